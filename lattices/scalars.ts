/** The one-number and one-flag lattices: `Max`, `Min`, `Bool`. */
import { asFinite, decodeError, fromSign, pack } from './codec.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';

/** The largest number seen. `new Max(3).merge(new Max(5)).reveal() === 5`. */
export class Max implements Lattice<Max, number> {
  readonly type = LatticeType.Max;
  readonly value: number;
  constructor(value: number) {
    if (!Number.isFinite(value)) throw decodeError('Max needs a finite number');
    this.value = value + 0; // -0 becomes 0: one value, one encoding
  }
  merge(other: Max): Max {
    return other.value > this.value ? other : this;
  }
  reveal(): number {
    return this.value;
  }
  compare(other: Max): Ordering {
    return fromSign(this.value - other.value);
  }
  leq(other: Max): boolean {
    return this.value <= other.value;
  }
  equals(other: Max): boolean {
    return this.value === other.value;
  }
  encode(): Uint8Array {
    return pack([this.type, this.value]);
  }
  static decodeFields(fields: readonly unknown[]): Max {
    if (fields.length !== 1) throw decodeError('Max: expected 1 field');
    return new Max(asFinite(fields[0], 'Max.value') + 0);
  }
}

/** The smallest number seen. */
export class Min implements Lattice<Min, number> {
  readonly type = LatticeType.Min;
  readonly value: number;
  constructor(value: number) {
    if (!Number.isFinite(value)) throw decodeError('Min needs a finite number');
    this.value = value + 0; // -0 becomes 0: one value, one encoding
  }
  merge(other: Min): Min {
    return other.value < this.value ? other : this;
  }
  reveal(): number {
    return this.value;
  }
  compare(other: Min): Ordering {
    return fromSign(other.value - this.value);
  }
  leq(other: Min): boolean {
    return this.value >= other.value;
  }
  equals(other: Min): boolean {
    return this.value === other.value;
  }
  encode(): Uint8Array {
    return pack([this.type, this.value]);
  }
  static decodeFields(fields: readonly unknown[]): Min {
    if (fields.length !== 1) throw decodeError('Min: expected 1 field');
    return new Min(asFinite(fields[0], 'Min.value') + 0);
  }
}

/** A flag that, once true, stays true (logical or). */
export class Bool implements Lattice<Bool, boolean> {
  readonly type = LatticeType.Bool;
  static readonly FALSE = new Bool(false);
  static readonly TRUE = new Bool(true);
  private constructor(readonly value: boolean) {}
  static of(value: boolean): Bool {
    return value ? Bool.TRUE : Bool.FALSE;
  }
  merge(other: Bool): Bool {
    return this.value ? this : other;
  }
  reveal(): boolean {
    return this.value;
  }
  compare(other: Bool): Ordering {
    return fromSign(Number(this.value) - Number(other.value));
  }
  leq(other: Bool): boolean {
    return !this.value || other.value;
  }
  equals(other: Bool): boolean {
    return this.value === other.value;
  }
  encode(): Uint8Array {
    return pack([this.type, this.value]);
  }
  static decodeFields(fields: readonly unknown[]): Bool {
    if (fields.length !== 1 || typeof fields[0] !== 'boolean') throw decodeError('Bool: expected one boolean');
    return Bool.of(fields[0]);
  }
}
