/**
 * A small seeded PRNG (sfc32 seeded through splitmix32) so that simulations and fault injection
 * are reproducible from one printed seed. Nothing in a core calls `Math.random()`.
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, bound). */
  int(bound: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A new independent generator derived from this one. */
  fork(): Random;
}

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A seeded generator; equal seeds give equal sequences. */
export function seededRandom(seed: number): Random {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  const nextUint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) nextUint32();
  const random: Random = {
    next: () => nextUint32() / 4294967296,
    int: (bound) => {
      if (!Number.isInteger(bound) || bound <= 0) throw new RangeError(`bound must be a positive integer, got ${bound}`);
      return Math.floor(random.next() * bound);
    },
    chance: (p) => random.next() < p,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('pick from an empty array');
      return items[random.int(items.length)] as (typeof items)[number];
    },
    fork: () => seededRandom(nextUint32()),
  };
  return random;
}
