/**
 * How a model (an `.onnx` file's bytes) is kept in the KVS, whose values are at most 8 MiB while
 * models are often larger: in chunks.
 *
 * - `<modelKey>` holds the manifest, a plain value `{ onnxChunks, bytes, sha256 }`;
 * - `<modelKey>#0` ... `<modelKey>#<onnxChunks - 1>` hold the bytes, each a `Uint8Array` of at most
 *   {@link MODEL_CHUNK_BYTES} (every chunk but the last exactly that much).
 *
 * The writer puts the chunks first and the manifest last, so a reader that finds a manifest finds
 * its chunks (a replaced model's old chunks may be read in between: the sha256 catches the mix, and
 * the reader reports it as a typed error rather than handing the runtime a spliced model).
 * {@link splitModel} is the writer's half (the client's `putModel`), {@link readChunkedModel} the
 * reader's (the executor's, through its cache).
 *
 * @example
 * ```ts
 * const { manifest, chunks } = splitModel(bytes);
 * // put chunks[i] at `${key}#${i}`, then manifest at key
 * const back = await readChunkedModel((key) => cache.get(key), key);   // bytes, or undefined
 * ```
 */
import { createHash } from 'node:crypto';
import { ErrorCode, LfaasError } from '../lattices/index.js';

/** The largest chunk: 4 MiB, half the 8 MiB value limit. */
export const MODEL_CHUNK_BYTES = 4 * 1024 * 1024;

/** The largest model: 1 GiB (256 chunks); ONNX's protobuf encoding stops at 2 GiB anyway. */
export const MODEL_BYTES_MAX = 1024 * 1024 * 1024;

/** The manifest at a model's key. */
export interface ModelManifest {
  readonly onnxChunks: number;
  readonly bytes: number;
  /** The sha256 of the whole model, lowercase hex. */
  readonly sha256: string;
}

/** The key of chunk `index` of the model at `modelKey`. */
export function modelChunkKey(modelKey: string, index: number): string {
  return `${modelKey}#${index}`;
}

/** The sha256 of `bytes`, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Splits a model into its manifest and chunks (views of `bytes`, not copies). Throws
 * EXEC_BAD_VALUE for an empty model or one larger than {@link MODEL_BYTES_MAX}.
 */
export function splitModel(bytes: Uint8Array, chunkBytes = MODEL_CHUNK_BYTES): { manifest: ModelManifest; chunks: Uint8Array[] } {
  if (bytes.byteLength === 0 || bytes.byteLength > MODEL_BYTES_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `a model is 1 byte to ${MODEL_BYTES_MAX} bytes, not ${bytes.byteLength}`);
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MODEL_CHUNK_BYTES) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `a chunk is 1 to ${MODEL_CHUNK_BYTES} bytes`);
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) chunks.push(bytes.subarray(offset, Math.min(offset + chunkBytes, bytes.byteLength)));
  return { manifest: { onnxChunks: chunks.length, bytes: bytes.byteLength, sha256: sha256Hex(bytes) }, chunks };
}

/**
 * Checks a value read at a model's key. Throws EXEC_BAD_VALUE when it is not a manifest: a plain
 * object with a whole `onnxChunks` from 1 to 256, `bytes` that those chunks can hold, and a 64
 * hex digit `sha256`.
 */
export function checkModelManifest(value: unknown, modelKey: string): ModelManifest {
  const problem = (what: string): LfaasError => new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${JSON.stringify(modelKey)} does not hold a model manifest: ${what}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw problem('not an object { onnxChunks, bytes, sha256 } (put models with putModel)');
  const { onnxChunks, bytes, sha256 } = value as { onnxChunks?: unknown; bytes?: unknown; sha256?: unknown };
  const chunksMax = Math.ceil(MODEL_BYTES_MAX / MODEL_CHUNK_BYTES);
  if (typeof onnxChunks !== 'number' || !Number.isSafeInteger(onnxChunks) || onnxChunks < 1 || onnxChunks > chunksMax) throw problem(`onnxChunks is 1 to ${chunksMax}`);
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < onnxChunks || bytes > onnxChunks * MODEL_CHUNK_BYTES || bytes > MODEL_BYTES_MAX) throw problem(`bytes does not fit ${onnxChunks} chunks`);
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw problem('sha256 is 64 lowercase hex digits');
  return { onnxChunks, bytes, sha256 };
}

/**
 * Reads a chunked model through `get` (the revealed plain value at a key, or undefined): the
 * manifest, then its chunks at once. Resolves with the model's bytes, or undefined when there is no
 * manifest at `modelKey`. Throws EXEC_BAD_VALUE for a malformed manifest, a missing or malformed
 * chunk, or bytes whose length or sha256 are not the manifest's.
 *
 * @example
 * ```ts
 * const model = await readChunkedModel(async (key) => (await kvs.get(key))?.reveal(), 'models/squeezenet');
 * ```
 */
export async function readChunkedModel(get: (key: string) => Promise<unknown>, modelKey: string): Promise<Uint8Array | undefined> {
  const stored = await get(modelKey);
  if (stored === undefined || stored === null) return undefined;
  // The executor's cache hands back the same manifest object while the model is unchanged (a new
  // put is a new object): its bytes were read and checked already.
  const known = typeof stored === 'object' ? assembled.get(stored) : undefined;
  if (known !== undefined) return known;
  const manifest = checkModelManifest(stored, modelKey);
  const chunks = await Promise.all(Array.from({ length: manifest.onnxChunks }, (_, index) => get(modelChunkKey(modelKey, index))));
  const out = new Uint8Array(manifest.bytes);
  let offset = 0;
  for (const [index, chunk] of chunks.entries()) {
    const key = modelChunkKey(modelKey, index);
    if (!(chunk instanceof Uint8Array)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `model chunk ${JSON.stringify(key)} is ${chunk === undefined ? 'missing' : 'not bytes'}`);
    if (chunk.byteLength === 0 || chunk.byteLength > MODEL_CHUNK_BYTES || offset + chunk.byteLength > manifest.bytes) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `model chunk ${JSON.stringify(key)} has ${chunk.byteLength} bytes, more than its manifest leaves`);
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  if (offset !== manifest.bytes) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `model ${JSON.stringify(modelKey)}: its chunks hold ${offset} bytes, its manifest says ${manifest.bytes}`);
  if (sha256Hex(out) !== manifest.sha256) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `model ${JSON.stringify(modelKey)}: its chunks do not match its manifest's sha256 (being replaced, or corrupt)`);
  assembled.set(stored as object, out);
  checkedSha256.set(out, manifest.sha256);
  return out;
}

/** Models read and checked, by the manifest object they were read for (held while it is). */
const assembled = new WeakMap<object, Uint8Array>();
/** The sha256 of the bytes readChunkedModel returned (checked against their manifest). */
const checkedSha256 = new WeakMap<Uint8Array, string>();

/**
 * The sha256 of `bytes` when {@link readChunkedModel} returned them (checked then), else undefined:
 * spares the inference service hashing a model it is handed again.
 */
export function knownModelSha256(bytes: Uint8Array): string | undefined {
  return checkedSha256.get(bytes);
}
