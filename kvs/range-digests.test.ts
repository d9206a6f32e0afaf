import { describe, expect, it } from 'vitest';
import { RANGES, RangeDigests, allRanges, rangeOf } from './range-digests.js';

describe('RangeDigests', () => {
  it('keeps per-peer XOR digests that a removal undoes, and finds the ranges that differ', () => {
    const mine = new RangeDigests();
    mine.account('k1', 0xabc, ['me', 'peer'], 'me', 1);
    mine.account('k2', 0x123, ['me', 'peer'], 'me', 1);
    mine.account('k3', 0x777, ['other', 'peer'], 'me', 1); // not replicated here: ignored
    expect(mine.sharingPeers()).toEqual(['peer']);
    const theirs = new RangeDigests();
    theirs.account('k1', 0xabc, ['me', 'peer'], 'me', 1);
    // k2 missing on their side: exactly its range differs.
    expect(mine.differing('peer', theirs.toWire('peer', allRanges()))).toEqual([rangeOf('k2')]);
    mine.account('k2', 0x123, ['me', 'peer'], 'me', -1);
    expect(mine.equals(theirs)).toBe(true);
    expect(mine.differing('peer', theirs.toWire('peer', allRanges()))).toEqual([]);
  });

  it('ignores ranges outside the table in what a peer sends', () => {
    const table = new RangeDigests();
    expect(table.differing('peer', [{ rangeStart: RANGES, digest: new Uint8Array(4), keyCount: 1 }, { rangeStart: -1 }])).toEqual([]);
  });
});
