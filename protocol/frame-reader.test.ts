import { describe, expect, it } from 'vitest';
import { FrameReader } from './frame-reader.js';

/** Frames as the wire carries them: a 4-byte big-endian length, then the bytes. */
function wire(frames: readonly Uint8Array[]): Buffer {
  return Buffer.concat(frames.flatMap((frame) => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(frame.byteLength);
    return [header, Buffer.from(frame)];
  }));
}

describe('FrameReader', () => {
  const frames = [new Uint8Array(), Buffer.from('a'), Buffer.alloc(5000, 3), Buffer.from('hello'), Buffer.alloc(70_000, 9), Buffer.from('z')];
  const bytes = wire(frames);
  const hex = (list: readonly Uint8Array[]): string[] => list.map((frame) => Buffer.from(frame).toString('hex'));

  it('reads the same frames whatever the chunking: one chunk, every byte alone, and seeded random cuts', () => {
    const cuttings: number[][] = [[bytes.length], Array(bytes.length).fill(1)];
    let seed = 7;
    for (let run = 0; run < 20; run++) {
      const cuts: number[] = [];
      for (let left = bytes.length; left > 0; ) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const size = Math.min(left, 1 + (seed % 9000));
        cuts.push(size);
        left -= size;
      }
      cuttings.push(cuts);
    }
    for (const cuts of cuttings) {
      const reader = new FrameReader(1 << 20);
      const got: Buffer[] = [];
      let at = 0;
      for (const size of cuts) {
        expect(reader.push(bytes.subarray(at, at + size), (frame) => got.push(frame))).toBe(true);
        at += size;
      }
      expect(hex(got)).toEqual(hex(frames));
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('refuses a length above its bound as soon as the 4 bytes are in, having delivered the frames before', () => {
    const reader = new FrameReader(100);
    const got: Buffer[] = [];
    const header = Buffer.alloc(4);
    header.writeUInt32BE(101);
    expect(reader.push(Buffer.concat([wire([Buffer.from('ok')]), header.subarray(0, 2)]), (frame) => got.push(frame))).toBe(true);
    expect(reader.push(header.subarray(2), (frame) => got.push(frame))).toBe(false);
    expect(hex(got)).toEqual(hex([Buffer.from('ok')]));
    // Exactly the bound is fine.
    const atBound = new FrameReader(100);
    const big: Buffer[] = [];
    expect(atBound.push(wire([Buffer.alloc(100, 1)]), (frame) => big.push(frame))).toBe(true);
    expect(big[0]!.byteLength).toBe(100);
  });

  it('copies a small frame cut from a big chunk (it must not pin the chunk) and keeps a big frame a view', () => {
    const chunk = wire([Buffer.from('tiny'), Buffer.alloc(60_000, 2)]);
    const got: Buffer[] = [];
    new FrameReader(1 << 20).push(chunk, (frame) => got.push(frame));
    expect(got[0]!.buffer).not.toBe(chunk.buffer);
    expect(got[1]!.buffer).toBe(chunk.buffer);
  });
});
