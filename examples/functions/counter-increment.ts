/**
 * Adds one to the shared `Counter` lattice at `key` with `ctx.increment`, so concurrent calls never
 * lose an increment. A Counter keeps one count per writer and merges by maximum; the executor is
 * the writer, so the counter holds one entry per executor (not one per call), and the increments
 * of calls running at once on an executor reach the KVS in one write.
 *
 * Resolves with the counter's value as the executor held it once this increment was in the KVS
 * (increments made elsewhere reach it within a push).
 */
import type { FunctionContext } from '../../client/index.js';

export default async function counterIncrement(key: string, ctx: FunctionContext): Promise<number> {
  return ctx.increment(key);
}
