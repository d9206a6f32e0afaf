/**
 * What a shard stores under a key: a *generation* (the hybrid-clock time of the delete that
 * started it; absent for the first) and, unless the key is deleted, a lattice value.
 *
 * An entry is itself a lattice, the lexicographic product (generation, value):
 * - a later generation replaces an earlier one (a delete is a new, empty generation);
 * - within one generation the values merge; a tombstone (no value) merges as bottom;
 * - two different lattice types in one generation (two replicas each accepted a first PUT of
 *   another type at once) resolve to the larger type tag, deterministically, so replicas agree.
 * So duplicated, reordered and late gossip of values and tombstones converges everywhere, and a
 * delete wins over PUTs that only reached replicas before it ("remove wins").
 */
import { Packr } from 'msgpackr';
import { ErrorCode, LfaasError, compareTimestamps, decodeLattice } from '../lattices/index.js';
import type { AnyLattice, Timestamp } from '../lattices/index.js';
import type { PbTypes } from '../protocol/index.js';
import { stableHash } from './ring.js';

/** The first generation: no delete yet. */
export const FIRST_GENERATION: Timestamp = { wallMs: 0, logical: 0 };

export interface Entry {
  readonly generation: Timestamp;
  /** The merged value; undefined for a tombstone. */
  readonly value: AnyLattice | undefined;
}

/** The merge of two entries of one key (see the module comment). */
export function mergeEntries(a: Entry, b: Entry): Entry {
  const order = compareTimestamps(a.generation, b.generation);
  if (order > 0) return a;
  if (order < 0) return b;
  if (a.value === undefined) return b;
  if (b.value === undefined) return a;
  if (a.value.type !== b.value.type) return a.value.type > b.value.type ? a : b;
  const merged = a.value.merge(b.value) as AnyLattice;
  return merged === a.value ? a : { generation: a.generation, value: merged };
}

/** True when the two entries hold the same state. */
export function entriesEqual(a: Entry, b: Entry): boolean {
  if (compareTimestamps(a.generation, b.generation) !== 0) return false;
  if (a.value === undefined || b.value === undefined) return a.value === b.value;
  return a.value.type === b.value.type && a.value.equals(b.value);
}

function generationFromWire(wire: PbTypes.ITimestamp | null | undefined): Timestamp {
  if (wire === null || wire === undefined) return FIRST_GENERATION;
  return { wallMs: Number(wire.wallMs ?? 0), logical: wire.logical ?? 0 };
}

/**
 * The entry a wire tuple carries (a PUT, gossip, a hand-off). Throws a typed error, and so
 * changes nothing, when the payload does not decode or contradicts its declared type.
 */
export function entryFromTuple(tuple: PbTypes.IKeyTuple): Entry {
  const generation = generationFromWire(tuple.generation);
  if (tuple.deleted === true) return { generation, value: undefined };
  const value = decodeLattice(tuple.payload ?? new Uint8Array());
  const declared = tuple.latticeType ?? 0;
  if (declared !== 0 && declared !== value.type) {
    throw new LfaasError(ErrorCode.LATTICE_DECODE, `tuple says lattice type ${declared}, its payload is type ${value.type}`);
  }
  return { generation, value };
}

/**
 * The wire tuple of an entry. `payload`, when given, must be `entry.value.encode()` (a store keeps
 * it, and serves it without encoding again).
 */
export function entryToTuple(key: string, entry: Entry, payload?: Uint8Array): PbTypes.IKeyTuple & { key: string } {
  const tuple: PbTypes.IKeyTuple & { key: string } = { key };
  if (entry.generation.wallMs !== 0 || entry.generation.logical !== 0) tuple.generation = { wallMs: entry.generation.wallMs, logical: entry.generation.logical };
  if (entry.value === undefined) tuple.deleted = true;
  else {
    tuple.latticeType = entry.value.type;
    tuple.payload = payload ?? entry.value.encode();
  }
  return tuple;
}

const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * The bytes of an entry on disk: msgpack `[wallMs, logical, payload | null]`. `payload`, when
 * given, must be `entry.value.encode()` (the caller has it already).
 */
export function encodeEntry(entry: Entry, payload?: Uint8Array): Uint8Array {
  return packr.pack([entry.generation.wallMs, entry.generation.logical, entry.value === undefined ? null : (payload ?? entry.value.encode())]);
}

/** Reads an entry written by {@link encodeEntry}; throws LATTICE_DECODE on anything else. */
export function decodeEntry(bytes: Uint8Array): Entry {
  return decodeStoredEntry(bytes).entry;
}

/** An entry written by {@link encodeEntry}, with its value's encoding (undefined for a tombstone). */
export function decodeStoredEntry(bytes: Uint8Array): { entry: Entry; payload: Uint8Array | undefined } {
  let parts: unknown;
  try {
    parts = packr.unpack(bytes);
  } catch (error) {
    throw new LfaasError(ErrorCode.LATTICE_DECODE, 'a stored entry is not msgpack', { cause: error });
  }
  if (!Array.isArray(parts) || parts.length !== 3) throw new LfaasError(ErrorCode.LATTICE_DECODE, 'a stored entry is not [wallMs, logical, payload]');
  const [wallMs, logical, payload] = parts as unknown[];
  if (!Number.isSafeInteger(wallMs) || !Number.isSafeInteger(logical) || (wallMs as number) < 0 || (logical as number) < 0) {
    throw new LfaasError(ErrorCode.LATTICE_DECODE, 'a stored entry has a bad generation');
  }
  const generation = { wallMs: wallMs as number, logical: logical as number };
  if (payload === null) return { entry: { generation, value: undefined }, payload: undefined };
  if (!(payload instanceof Uint8Array)) throw new LfaasError(ErrorCode.LATTICE_DECODE, 'a stored entry has a bad payload');
  // Written here, by this code, canonical when it was written: not checked again on every read.
  return { entry: { generation, value: decodeLattice(payload, { verifyCanonical: false }) }, payload };
}

/** A 32-bit digest of (key, entry) for anti-entropy; digests of a range are XORed together. */
export function entryDigest(key: string, encoded: Uint8Array): number {
  let hash = stableHash(key);
  for (let i = 0; i < encoded.length; i++) hash = Math.imul(hash ^ encoded[i]!, 0x01000193);
  hash ^= hash >>> 15;
  hash = Math.imul(hash, 0x2c1b3c6d);
  hash ^= hash >>> 12;
  return hash >>> 0;
}
