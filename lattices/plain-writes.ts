/**
 * A lattice from a plain value and a type name: what `lfaas kvs put --type` and the HTTP
 * ingress's `PUT /v1/kvs/{key}?type=` write. `lww` (the default: the value in a last-writer-wins
 * register), `counter` (a safe-integer step added, or taken, under `writer`), `gset` (an array of
 * elements), `max`, `min` (a finite number), `bool`. Bad input is EXEC_BAD_VALUE, nothing built.
 */
import { HybridClock } from './clock.js';
import { Counter } from './counter.js';
import { ErrorCode, LfaasError } from './errors.js';
import type { AnyLattice } from './lattice.js';
import { Lww } from './lww.js';
import { Bool, Max, Min } from './scalars.js';
import { GSet } from './sets.js';

export const PLAIN_WRITE_TYPES = ['lww', 'counter', 'gset', 'max', 'min', 'bool'] as const;
export type PlainWriteType = (typeof PLAIN_WRITE_TYPES)[number];

/** The lattice of `type` holding `value`, written as `writer` (an LWW register's and a Counter's writer id). */
export function latticeOfPlain(value: unknown, type: PlainWriteType, writer: string): AnyLattice {
  const number = (): number => {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `a ${type} value must be a finite number, got ${JSON.stringify(value) ?? String(value)}`);
    return value;
  };
  switch (type) {
    case 'lww':
      return Lww.write(new HybridClock(writer, () => Date.now()), value === undefined ? null : value);
    case 'counter': {
      const step = number();
      if (!Number.isSafeInteger(step)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'a counter step must be a safe integer');
      return step >= 0 ? Counter.ZERO.increment(writer, step) : Counter.ZERO.decrement(writer, -step);
    }
    case 'gset':
      if (!Array.isArray(value)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'a gset value must be an array');
      return GSet.of(...(value as unknown[]));
    case 'max':
      return new Max(number());
    case 'min':
      return new Min(number());
    case 'bool':
      if (typeof value !== 'boolean') throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'a bool value must be true or false');
      return Bool.of(value);
  }
}
