/**
 * KVS values over HTTP. A plain value (a JSON or msgpack body) is written as a last-writer-wins
 * register by default; `?type=` writes another lattice from the same body, as `lfaas kvs put
 * --type` does: `counter` (an integer step, added under a fresh writer id), `gset` (an array of
 * elements), `max`, `min` (a number), `bool`. Any lattice at all travels in the KVS's own encoding
 * (`application/vnd.lfaas.lattice`: the lattice codec's bytes, decoded and checked here).
 * A read answers the lattice's revealed value (an LWW register's value, a counter's sum, a set's
 * elements), its type in the `Lfaas-Lattice-Type` header.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, PLAIN_WRITE_TYPES, decodeLattice, isLfaasError, latticeOfPlain } from '../lattices/index.js';
import type { AnyLattice, PlainWriteType } from '../lattices/index.js';
import { HttpError } from './errors.js';

export const WRITE_TYPES = PLAIN_WRITE_TYPES;
export type WriteType = PlainWriteType;

const bad = (message: string): HttpError => new HttpError(400, ErrorCode.EXEC_BAD_VALUE, message);

/** The lattice a body of `type` writes (a bad value is a 400). */
export function latticeOfValue(value: unknown, type: WriteType): AnyLattice {
  try {
    return latticeOfPlain(value, type, `http-${randomUUID()}`);
  } catch (error) {
    if (isLfaasError(error) && error.code === ErrorCode.EXEC_BAD_VALUE) throw bad(error.message);
    throw error;
  }
}

/** A lattice from its own encoding (every field checked; LATTICE_DECODE, a 400, otherwise). */
export function latticeOfBytes(bytes: Uint8Array): AnyLattice {
  if (bytes.byteLength === 0) throw bad('an empty body is no lattice');
  return decodeLattice(bytes);
}

/** `?type=`: one of WRITE_TYPES (lww when absent). */
export function writeTypeOf(text: string | undefined): WriteType {
  if (text === undefined || text === '') return 'lww';
  if ((WRITE_TYPES as readonly string[]).includes(text)) return text as WriteType;
  throw bad(`type must be one of ${WRITE_TYPES.join(', ')}`);
}
