/**
 * Last-writer-wins register. The winner is the larger `(wallMs, logical, writer)` of a hybrid
 * logical clock; a full tie (one writer reusing a timestamp, a bug elsewhere) goes to the larger
 * canonical encoding of the value, so replicas agree whatever the arrival order.
 */
import { asCount, asString, canonicalKey, canonicalValue, checkString, compareBytes, compareStrings, decodeError, fromSign, pack } from './codec.js';
import type { HybridClock, Timestamp } from './clock.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';

/**
 * A last-writer-wins register holding one plain value.
 *
 * The value is kept in canonical form (see `canonicalValue`): a copy with sorted keys, `-0` as `0`,
 * one `NaN`, plain bytes, so the writer reads exactly what every replica decodes. A value or writer
 * id the codec cannot carry faithfully (a `Date`, a lone surrogate, ...) is refused here with
 * `LATTICE_DECODE`, never stored changed.
 *
 * @example
 * ```ts
 * const a = Lww.at({ wallMs: 1, logical: 0 }, 'w1', { n: -0 });
 * a.reveal(); // { n: 0 }, on the writer and on every reader
 * ```
 */
export class Lww<T = unknown> implements Lattice<Lww<T>, T> {
  readonly type = LatticeType.Lww;
  /** The written value, in canonical form (a copy: object keys sorted, `-0` as `0`). */
  readonly value: T;

  constructor(
    readonly wallMs: number,
    readonly logical: number,
    readonly writerId: string,
    value: T,
  ) {
    if (!Number.isSafeInteger(wallMs) || wallMs < 0 || !Number.isSafeInteger(logical) || logical < 0) throw decodeError('Lww: timestamp must be non-negative integers');
    checkString(writerId, 'Lww.writerId');
    this.value = canonicalValue(value);
  }

  /** A new write stamped by `clock`. */
  static write<T>(clock: HybridClock, value: T): Lww<T> {
    const at: Timestamp = clock.tick();
    return new Lww(at.wallMs, at.logical, clock.writerId, value);
  }

  /** A write at an explicit timestamp (tests, replays). */
  static at<T>(timestamp: Timestamp, writerId: string, value: T): Lww<T> {
    return new Lww(timestamp.wallMs, timestamp.logical, writerId, value);
  }

  get timestamp(): Timestamp {
    return { wallMs: this.wallMs, logical: this.logical };
  }

  /** Sign of (this - other) in the total order. */
  private order(other: Lww<T>): number {
    const byTime = this.wallMs - other.wallMs || this.logical - other.logical || compareStrings(this.writerId, other.writerId);
    if (byTime !== 0 || this.value === other.value) return byTime;
    // Bytes (a model chunk, a tensor's data): compared as they are, in the order of their
    // canonical keys (hex digits sort as the bytes do, a prefix first) without building the keys:
    // a tie between two copies of one 4 MiB value (a subscription push of what a cache holds) took
    // 1.6 s through hex strings, long enough to silence an executor's heartbeats.
    if (this.value instanceof Uint8Array && other.value instanceof Uint8Array) return compareBytes(this.value, other.value);
    return compareStrings(canonicalKey(this.value), canonicalKey(other.value));
  }

  merge(other: Lww<T>): Lww<T> {
    return this.order(other) >= 0 ? this : other;
  }
  reveal(): T {
    return this.value;
  }
  compare(other: Lww<T>): Ordering {
    return fromSign(this.order(other));
  }
  leq(other: Lww<T>): boolean {
    return this.order(other) <= 0;
  }
  equals(other: Lww<T>): boolean {
    return this.order(other) === 0;
  }
  encode(): Uint8Array {
    return pack([this.type, this.wallMs, this.logical, this.writerId, this.value]);
  }
  static decodeFields(fields: readonly unknown[]): Lww {
    if (fields.length !== 4) throw decodeError('Lww: expected 4 fields');
    return new Lww(asCount(fields[0], 'Lww.wallMs'), asCount(fields[1], 'Lww.logical'), asString(fields[2], 'Lww.writerId'), fields[3]);
  }
}

