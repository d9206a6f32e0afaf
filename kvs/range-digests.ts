/**
 * Anti-entropy's bookkeeping: per co-replica, per hash range, the XOR of the digests of the keys
 * this shard and that co-replica both replicate, and their count. Kept up to date on every store
 * and drop (XOR undoes itself), so an anti-entropy round costs O(peers x ranges), not O(keys);
 * two shards compare ranges and gossip only the keys of the ranges that differ.
 */
import type { PbTypes } from '../protocol/index.js';
import { stableHash } from './ring.js';

const RANGE_BITS = 6;
/** Hash ranges the key space is cut into for comparison. */
export const RANGES = 1 << RANGE_BITS;

/** The hash range of a key. */
export function rangeOf(key: string): number {
  return stableHash(key) >>> (32 - RANGE_BITS);
}

/** Every range, in order. */
export function allRanges(): number[] {
  return Array.from({ length: RANGES }, (_, index) => index);
}

interface PeerDigests {
  readonly digests: Uint32Array;
  readonly counts: Uint32Array;
}

const none = (): PeerDigests => ({ digests: new Uint32Array(RANGES), counts: new Uint32Array(RANGES) });

export class RangeDigests {
  private readonly byPeer = new Map<string, PeerDigests>();

  /**
   * Adds (+1) or removes (-1) a key's digest in the table of each of its `replicas` other than
   * `self`; nothing when `self` does not replicate the key.
   */
  account(key: string, digest: number, replicas: readonly string[], self: string, delta: 1 | -1): void {
    if (!replicas.includes(self)) return;
    const range = rangeOf(key);
    for (const replica of replicas) {
      if (replica === self) continue;
      let entry = this.byPeer.get(replica);
      if (entry === undefined) this.byPeer.set(replica, (entry = none()));
      entry.digests[range]! ^= digest;
      entry.counts[range]! += delta;
    }
  }

  /** The co-replicas that share at least one key with this shard. */
  sharingPeers(): string[] {
    return [...this.byPeer].filter(([, entry]) => entry.counts.some((count) => count > 0)).map(([peer]) => peer);
  }

  /** The ranges of `theirs` (a peer's digests) that differ from ours with `peer`. */
  differing(peer: string, theirs: readonly PbTypes.IRangeDigest[]): number[] {
    const { digests, counts } = this.byPeer.get(peer) ?? none();
    const differing: number[] = [];
    for (const range of theirs) {
      const index = Number(range.rangeStart);
      if (!Number.isInteger(index) || index < 0 || index >= RANGES) continue;
      const digest = range.digest ?? new Uint8Array();
      const value = digest.length === 4 ? new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0) : -1;
      if (value !== digests[index] || range.keyCount !== counts[index]) differing.push(index);
    }
    return differing;
  }

  /** Our digests with `peer` for `ranges`, as the wire carries them. */
  toWire(peer: string, ranges: readonly number[]): PbTypes.IRangeDigest[] {
    const { digests, counts } = this.byPeer.get(peer) ?? none();
    return ranges.map((range) => {
      const digest = new Uint8Array(4);
      new DataView(digest.buffer).setUint32(0, digests[range]!);
      return { rangeStart: range, rangeEnd: range + 1, digest, keyCount: counts[range]! };
    });
  }

  /** Whether two tables hold the same digests and counts for every peer. */
  equals(other: RangeDigests): boolean {
    const same = (a: Uint32Array, b: Uint32Array): boolean => a.every((value, i) => value === b[i]);
    for (const peer of new Set([...this.byPeer.keys(), ...other.byPeer.keys()])) {
      const mine = this.byPeer.get(peer) ?? none();
      const theirs = other.byPeer.get(peer) ?? none();
      if (!same(mine.digests, theirs.digests) || !same(mine.counts, theirs.counts)) return false;
    }
    return true;
  }
}
