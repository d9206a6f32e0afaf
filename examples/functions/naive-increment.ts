/**
 * Adds one to the plain number at `key` by read-modify-write (`ctx.get`, then `ctx.put`): a plain
 * value is a last-writer-wins register, so two calls that read the same value both write
 * value + 1 and one increment is lost. The counter-increment function is the lattice way.
 *
 * Resolves with the value it wrote.
 */
import type { FunctionContext } from '../../client/index.js';

export default async function naiveIncrement(key: string, ctx: FunctionContext): Promise<number> {
  const current = await ctx.get(key);
  const next = (typeof current === 'number' ? current : 0) + 1;
  await ctx.put(key, next);
  return next;
}
