/**
 * What every lattice is. Values are immutable: `merge` and every mutator return a new lattice (or
 * one of their inputs when it already dominates), so a value handed to a cache, a replica or a
 * message can never change under its holder.
 *
 * Laws (property-tested for every type in `laws.test.ts`):
 * - `a.merge(b)` equals `b.merge(a)` (commutative), `a.merge(b).merge(c)` equals
 *   `a.merge(b.merge(c))` (associative), `a.merge(a)` equals `a` (idempotent);
 * - `a.leq(a.merge(b))`;
 * - `decodeLattice(a.encode())` equals `a`.
 *
 * And replicas read alike (property-tested in `reveal.test.ts`): `reveal()` is a pure function of
 * the state, the same (down to `Object.is` on every number, prototypes and key order) whatever the
 * merge order and after `decodeLattice(a.encode())`, or the same typed error everywhere. So a value
 * is held in the form every reader decodes (see `canonicalValue`), and what the codec cannot carry
 * back unchanged is refused where it is built, with `LATTICE_DECODE`.
 */

/** The type tags on the wire. Stable: never renumber, only add. */
export const LatticeType = {
  Lww: 1,
  GSet: 2,
  OrderedSet: 3,
  Max: 4,
  Min: 5,
  Bool: 6,
  Priority: 7,
  Map: 8,
  VectorClock: 9,
  Counter: 10,
  SingleKeyCausal: 11,
  MultiKeyCausal: 12,
} as const;

/** A lattice type tag. */
export type LatticeType = (typeof LatticeType)[keyof typeof LatticeType];

/** The name of a lattice type, for messages and logs. */
export type LatticeTypeName = keyof typeof LatticeType;

/** The result of comparing two lattice values in their partial order. */
export type Ordering = 'lt' | 'eq' | 'gt' | 'concurrent';

/**
 * A lattice value of type `Self` whose plain value is `V`.
 */
export interface Lattice<Self extends Lattice<Self, V>, V = unknown> {
  /** The type tag; equal for every value of the class. */
  readonly type: LatticeType;
  /** The least upper bound of this and `other`. Associative, commutative and idempotent. */
  merge(other: Self): Self;
  /** The plain value a user sees. */
  reveal(): V;
  /** Where this stands against `other` in the partial order. */
  compare(other: Self): Ordering;
  /** `this <= other` in the partial order. */
  leq(other: Self): boolean;
  /** Structural equality (same place in the order). */
  equals(other: Self): boolean;
  /** The tagged msgpack encoding; `decodeLattice` turns it back. Deterministic for equal values. */
  encode(): Uint8Array;
}

/** Any lattice of any type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyLattice = Lattice<any, unknown>;
