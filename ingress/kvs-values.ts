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
import { Bool, Counter, ErrorCode, GSet, HybridClock, Lww, Max, Min, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { HttpError } from './errors.js';

export const WRITE_TYPES = ['lww', 'counter', 'gset', 'max', 'min', 'bool'] as const;
export type WriteType = (typeof WRITE_TYPES)[number];

const bad = (message: string): HttpError => new HttpError(400, ErrorCode.EXEC_BAD_VALUE, message);

/** The lattice a body of `type` writes. */
export function latticeOfValue(value: unknown, type: WriteType): AnyLattice {
  const writer = `http-${randomUUID()}`;
  const number = (): number => {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(`a ${type} value must be a finite number`);
    return value;
  };
  switch (type) {
    case 'lww':
      return Lww.write(new HybridClock(writer, () => Date.now()), value === undefined ? null : value);
    case 'counter': {
      const step = number();
      if (!Number.isSafeInteger(step)) throw bad('a counter step must be a safe integer');
      return step >= 0 ? Counter.ZERO.increment(writer, step) : Counter.ZERO.decrement(writer, -step);
    }
    case 'gset':
      if (!Array.isArray(value)) throw bad('a gset value must be an array');
      return GSet.of(...(value as unknown[]));
    case 'max':
      return new Max(number());
    case 'min':
      return new Min(number());
    case 'bool':
      if (typeof value !== 'boolean') throw bad('a bool value must be true or false');
      return Bool.of(value);
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
