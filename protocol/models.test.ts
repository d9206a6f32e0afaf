import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { propertyRuns } from '../lattices/testing.js';
import { MODEL_CHUNK_BYTES, checkModelManifest, knownModelSha256, modelChunkKey, readChunkedModel, sha256Hex, splitModel } from './models.js';
import { decodeValue, encodeValue } from './values.js';

/** A KVS of plain values, each stored through the value codec as the real one would. */
function store(entries: Record<string, unknown>): (key: string) => Promise<unknown> {
  const encoded = new Map(Object.entries(entries).map(([key, value]) => [key, encodeValue(value)]));
  return async (key) => {
    const bytes = encoded.get(key);
    return bytes === undefined ? undefined : decodeValue(bytes);
  };
}

function put(modelKey: string, bytes: Uint8Array, chunkBytes: number): Record<string, unknown> {
  const { manifest, chunks } = splitModel(bytes, chunkBytes);
  return { [modelKey]: { ...manifest }, ...Object.fromEntries(chunks.map((chunk, i) => [modelChunkKey(modelKey, i), chunk])) };
}

describe('chunked models', () => {
  it('round-trips any model through chunks of any size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.integer({ min: 1, max: 700 }), async (bytes, chunkBytes) => {
        const entries = put('m', bytes, chunkBytes);
        expect((entries['m'] as { onnxChunks: number }).onnxChunks).toBe(Math.ceil(bytes.byteLength / chunkBytes));
        const back = await readChunkedModel(store(entries), 'm');
        expect(back).toEqual(bytes);
        expect(knownModelSha256(back!)).toBe(sha256Hex(bytes));
      }),
      { numRuns: propertyRuns(100) },
    );
  });

  it('uses 4 MiB chunks by default, and nothing at the key is undefined', async () => {
    const bytes = new Uint8Array(MODEL_CHUNK_BYTES + 10).fill(7);
    expect(splitModel(bytes).chunks.map((c) => c.byteLength)).toEqual([MODEL_CHUNK_BYTES, 10]);
    expect(await readChunkedModel(store({}), 'none')).toBeUndefined();
  });

  it('refuses a damaged model with EXEC_BAD_VALUE: a flipped byte, a missing or extra or wrong-type chunk, a bad manifest', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 2, maxLength: 500 }), fc.integer({ min: 1, max: 100 }), fc.nat(), fc.constantFrom('flip', 'drop', 'type', 'grow', 'count', 'sha'), async (bytes, chunkBytes, pick, damage) => {
        const entries = put('m', bytes, chunkBytes);
        const manifest = entries['m'] as { onnxChunks: number; bytes: number; sha256: string };
        const index = pick % manifest.onnxChunks;
        const key = modelChunkKey('m', index);
        const chunk = (entries[key] as Uint8Array).slice();
        if (damage === 'flip') {
          chunk[pick % chunk.byteLength]! ^= 1;
          entries[key] = chunk;
        } else if (damage === 'drop') delete entries[key];
        else if (damage === 'type') entries[key] = Array.from(chunk);
        else if (damage === 'grow') entries[key] = new Uint8Array([...chunk, 0]);
        else if (damage === 'count') entries['m'] = { ...manifest, onnxChunks: 0 };
        else entries['m'] = { ...manifest, sha256: 'x'.repeat(64) };
        await expect(readChunkedModel(store(entries), 'm')).rejects.toMatchObject({ code: ErrorCode.EXEC_BAD_VALUE });
      }),
      { numRuns: propertyRuns(150) },
    );
  });

  it('checks manifests, and splits only 1 byte to 1 GiB', () => {
    for (const bad of [null, 'x', new Uint8Array(3), [], { onnxChunks: 1, bytes: 0, sha256: '0'.repeat(64) }, { onnxChunks: 1, bytes: MODEL_CHUNK_BYTES + 1, sha256: '0'.repeat(64) }, { onnxChunks: 1.5, bytes: 1, sha256: '0'.repeat(64) }, { onnxChunks: 1, bytes: 1, sha256: 'A'.repeat(64) }]) {
      expect(() => checkModelManifest(bad, 'k')).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
    }
    expect(() => splitModel(new Uint8Array(0))).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
  });

  it('hands back the same bytes, unread, while the manifest object is the same (the executor cache)', async () => {
    const entries = put('m', new Uint8Array([1, 2, 3, 4, 5]), 2);
    const manifest = entries['m'];
    let reads = 0;
    const get = async (key: string): Promise<unknown> => {
      reads++;
      return entries[key];
    };
    const first = await readChunkedModel(get, 'm');
    const readsAfterFirst = reads;
    expect(await readChunkedModel(get, 'm')).toBe(first);
    expect(reads).toBe(readsAfterFirst + 1);
    entries['m'] = { ...(manifest as object) };
    expect(await readChunkedModel(get, 'm')).not.toBe(first);
  });
});
