/**
 * Models in the KVS: {@link putModel} stores an `.onnx` file's bytes in the chunked format of
 * protocol/models.ts (the chunks, then the manifest at the model's key), where functions find
 * them with `ctx.infer(modelKey, feeds)`; {@link getModel} reads one back.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * await putModel(faas, 'models/squeezenet', await readFile('squeezenet1.1.onnx'));
 * ```
 */
import { HybridClock, Lww } from '../lattices/index.js';
import { modelChunkKey, readChunkedModel, splitModel } from '../protocol/index.js';
import type { ModelManifest } from '../protocol/index.js';
import type { KvsClient, WriteOptions } from './kvs-client.js';

/** A KVS client, or anything holding one (a `LatticeFaas`). */
export type KvsHolder = KvsClient | { readonly kvs: KvsClient };

function kvsOf(target: KvsHolder): KvsClient {
  return 'kvs' in target ? target.kvs : target;
}

/** Writes at most this many chunks at once (each up to 4 MiB), to bound the bytes in flight. */
const CHUNKS_IN_FLIGHT_MAX = 4;

/**
 * Stores `bytes` (an ONNX model) at `modelKey`: its chunks at `<modelKey>#<i>`, then its manifest
 * `{ onnxChunks, bytes, sha256 }` at `modelKey` (ack `replicated` by default, so every replica
 * an executor may read has it). Resolves with the manifest. A later put replaces the model;
 * executors load the new bytes at their next call. Throws EXEC_BAD_VALUE for an empty model or
 * one over 1 GiB.
 */
export async function putModel(target: KvsHolder, modelKey: string, bytes: Uint8Array, options: WriteOptions = {}): Promise<ModelManifest> {
  const kvs = kvsOf(target);
  const { manifest, chunks } = splitModel(bytes);
  const clock = new HybridClock('put-model', () => Date.now());
  const write: WriteOptions = { ack: options.ack ?? 'replicated' };
  for (let first = 0; first < chunks.length; first += CHUNKS_IN_FLIGHT_MAX) {
    await Promise.all(chunks.slice(first, first + CHUNKS_IN_FLIGHT_MAX).map((chunk, offset) => kvs.put(modelChunkKey(modelKey, first + offset), Lww.write(clock, chunk.slice()), write)));
  }
  await kvs.put(modelKey, Lww.write(clock, { ...manifest }), write);
  return manifest;
}

/** The model at `modelKey` (checked against its manifest's length and sha256), or undefined. */
export async function getModel(target: KvsHolder, modelKey: string): Promise<Uint8Array | undefined> {
  const kvs = kvsOf(target);
  return readChunkedModel(async (key) => (await kvs.get(key))?.reveal(), modelKey);
}
