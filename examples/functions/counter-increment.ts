/**
 * Adds one to the shared `Counter` lattice at `key` by merging, so concurrent calls never lose an
 * increment: a PN-counter keeps one count per writer and merges by maximum, and each call writes
 * as its own writer (its call id; a retried async call reuses it, so a retry does not count twice).
 *
 * The function builds its increment from the lattice it reads (`ctx.getLattice`), not from a
 * `Counter` it imports: importing a value from the SDK (`client/index.js`) would bundle its
 * Node-only parts (sockets, esbuild), which functions may not use. A type-only import is erased
 * by the bundler, so the function is a few hundred bytes. The key must hold a Counter before the
 * first call (the demo merges `Counter.ZERO` into it).
 *
 * Resolves with the counter's value as this call saw it (its read, plus its own increment).
 */
import type { Counter, FunctionContext } from '../../client/index.js';

export default async function counterIncrement(key: string, ctx: FunctionContext): Promise<number> {
  const current = await ctx.getLattice(key);
  if (current === undefined) throw new Error(`${key} holds no Counter yet: merge Counter.ZERO into it first`);
  if (typeof (current as Partial<Counter>).increment !== 'function') throw new TypeError(`${key} holds a lattice of type ${current.type}, not a Counter`);
  const next = (current as Counter).increment(ctx.callId);
  await ctx.merge(key, next);
  return next.reveal();
}
