/**
 * Decodes any lattice payload by its type tag. Everything malformed is a typed error
 * (`LATTICE_DECODE`, `LATTICE_UNKNOWN_TYPE`), never another exception and never a wrong value.
 * Only canonical encodings are accepted: a decoded value re-encodes to exactly the input bytes, so
 * one value has one encoding everywhere (byte comparisons, hashes and caches can trust it).
 * Strings must be well-formed UTF-8 and map keys strings (see `strings.ts`): msgpackr would
 * otherwise turn bad bytes into U+FFFD, and an integer key into a string, without a word.
 */
import { asArray, bytesEqual, decodeError, unpack } from './codec.js';
import { Counter } from './counter.js';
import { ErrorCode, LfaasError } from './errors.js';
import { LatticeType } from './lattice.js';
import type { AnyLattice, LatticeTypeName } from './lattice.js';
import { Lww } from './lww.js';
import { MapLattice } from './map-lattice.js';
import { Priority } from './priority.js';
import { Bool, Max, Min } from './scalars.js';
import { GSet, OrderedSet } from './sets.js';
import { MultiKeyCausal, SingleKeyCausal } from './causal.js';
import { msgpackStringProblem } from './strings.js';
import { VectorClock } from './vector-clock.js';

/** How deep maps may nest; deeper payloads are refused (a stack guard against hostile input). */
export const MAX_NESTING_DEPTH = 32;

const NAMES = new Map<number, LatticeTypeName>(Object.entries(LatticeType).map(([name, tag]) => [tag, name as LatticeTypeName]));

/** The name of a type tag, or undefined for an unknown tag. */
export function latticeTypeName(tag: number): LatticeTypeName | undefined {
  return NAMES.get(tag);
}

/** How {@link decodeLattice} checks its input. */
export interface DecodeLatticeOptions {
  /**
   * Refuse bytes that are not exactly the canonical encoding of the value they decode to (the
   * default). Stores need it: equal values must have equal bytes (digests, equality). A reader of
   * bytes a store served may skip it: every field is still validated.
   */
  readonly verifyCanonical?: boolean;
}

/**
 * Decodes a payload made by `encode()`.
 *
 * @example
 * ```ts
 * const counter = decodeLattice(Counter.ZERO.increment('a').encode()); // a Counter revealing 1
 * ```
 */
export function decodeLattice(bytes: Uint8Array, options: DecodeLatticeOptions = {}): AnyLattice {
  // Without the canonical check, each level's strings are checked where it is unpacked; with it, a
  // string msgpackr changed re-encodes differently, and the byte comparison below refuses it.
  const verify = options.verifyCanonical !== false;
  const value = decodeAt(bytes, 0, !verify);
  if (!verify) return value;
  let canonical: Uint8Array;
  try {
    canonical = value.encode();
  } catch (error) {
    throw error instanceof LfaasError ? error : decodeError(`unencodable lattice: ${(error as Error).message}`, error);
  }
  // Nested map values are checked here too: they are embedded byte for byte in the outer encoding.
  if (!bytesEqual(canonical, bytes)) throw decodeError(msgpackStringProblem(bytes) ?? 'not the canonical encoding of its value');
  return value;
}

function decodeAt(bytes: Uint8Array, depth: number, checkStrings: boolean): AnyLattice {
  if (depth > MAX_NESTING_DEPTH) throw decodeError(`lattice nested deeper than ${MAX_NESTING_DEPTH}`);
  const unpacked = unpack(bytes);
  if (checkStrings) {
    const problem = msgpackStringProblem(bytes);
    if (problem !== undefined) throw decodeError(problem);
  }
  const decoded = asArray(unpacked, 'lattice');
  const tag = decoded[0];
  const fields = decoded.slice(1);
  try {
    switch (tag) {
      case LatticeType.Lww:
        return Lww.decodeFields(fields);
      case LatticeType.GSet:
        return GSet.decodeFields(fields);
      case LatticeType.OrderedSet:
        return OrderedSet.decodeFields(fields);
      case LatticeType.Max:
        return Max.decodeFields(fields);
      case LatticeType.Min:
        return Min.decodeFields(fields);
      case LatticeType.Bool:
        return Bool.decodeFields(fields);
      case LatticeType.Priority:
        return Priority.decodeFields(fields);
      case LatticeType.Map:
        return MapLattice.decodeFields(fields, (nested) => decodeAt(nested, depth + 1, checkStrings));
      case LatticeType.VectorClock:
        return VectorClock.decodeFields(fields);
      case LatticeType.Counter:
        return Counter.decodeFields(fields);
      case LatticeType.SingleKeyCausal:
        return SingleKeyCausal.decodeFields(fields);
      case LatticeType.MultiKeyCausal:
        return MultiKeyCausal.decodeFields(fields);
      default:
        throw new LfaasError(ErrorCode.LATTICE_UNKNOWN_TYPE, `unknown lattice type tag ${String(tag)}`);
    }
  } catch (error) {
    if (error instanceof LfaasError) throw error;
    // A bug or a value our readers did not foresee: still a typed error, never a crash.
    throw decodeError(`malformed lattice: ${(error as Error).message}`, error);
  }
}
