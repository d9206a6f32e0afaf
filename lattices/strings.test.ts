import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { isWellFormedString, msgpackStringProblem } from './strings.js';
import { edgeValueArbitrary, loneSurrogateStringArbitrary, propertyRuns } from './testing.js';

const runs = propertyRuns(300);
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', moreTypes: false });
const fatal = new TextDecoder('utf-8', { fatal: true });

/** msgpack str of raw bytes, with the smallest header. */
function str(bytes: Uint8Array): Uint8Array {
  const head = bytes.length < 32 ? [0xa0 | bytes.length] : bytes.length < 256 ? [0xd9, bytes.length] : [0xda, bytes.length >> 8, bytes.length & 0xff];
  return Uint8Array.from([...head, ...bytes]);
}

describe('msgpackStringProblem', () => {
  it('agrees with a fatal TextDecoder on every byte string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        let wellFormed = true;
        try {
          fatal.decode(bytes);
        } catch {
          wellFormed = false;
        }
        expect(msgpackStringProblem(str(bytes)) === undefined).toBe(wellFormed);
      }),
      { numRuns: runs },
    );
  });

  it('finds nothing in what msgpackr packs from well-formed values, whatever their shape', () => {
    fc.assert(
      fc.property(edgeValueArbitrary, fc.string({ unit: 'binary' }), (value, text) => {
        expect(msgpackStringProblem(packr.pack([value, { [text]: text }, Uint8Array.of(0xed, 0xa0, 0x80)]))).toBeUndefined();
      }),
      { numRuns: runs },
    );
  });

  it('finds what msgpackr packs from a short lone surrogate; a long one it packs as U+FFFD (why construction refuses)', () => {
    fc.assert(
      fc.property(loneSurrogateStringArbitrary, (text) => {
        expect(isWellFormedString(text)).toBe(false);
        const bytes = packr.pack({ k: [text] });
        const problem = msgpackStringProblem(bytes);
        if (problem === undefined) expect((packr.unpack(bytes) as { k: string[] }).k[0]).not.toBe(text);
        else expect(problem).toMatch(/not well-formed UTF-8/);
      }),
      { numRuns: runs },
    );
  });

  it('reports non-string map keys, truncation and trailing bytes, and never reads past the end', () => {
    expect(msgpackStringProblem(Uint8Array.of(0x81, 0x01, 0x02))).toMatch(/map key at byte 1 is not a string/);
    expect(msgpackStringProblem(Uint8Array.of(0x81, 0xa1, 0x61, 0x81, 0xc0, 0x01))).toMatch(/not a string/);
    expect(msgpackStringProblem(Uint8Array.of(0x92, 0x01))).toBe('truncated payload');
    expect(msgpackStringProblem(Uint8Array.of(0xa3, 0x61))).toBe('truncated payload');
    expect(msgpackStringProblem(Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff))).toBe('truncated payload');
    expect(msgpackStringProblem(Uint8Array.of(0x01, 0x02))).toBe('trailing bytes');
    expect(msgpackStringProblem(Uint8Array.of(0xc1))).toMatch(/reserved/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const problem = msgpackStringProblem(bytes);
        expect(problem === undefined || typeof problem === 'string').toBe(true);
      }),
      { numRuns: runs },
    );
  });
});
