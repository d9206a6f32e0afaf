/**
 * Reads `key` through `ctx.get` and resolves with its value, or with the code of the error the
 * platform raised: a function runs with its owner's rights, so `alice/read-key` reads `alice/...`
 * keys and gets `UNAUTHORISED` for anyone else's (and `KVS_BAD_KEY` for a system key).
 */
import type { FunctionContext } from '../../client/index.js';

export default async function readKey(key: string, ctx: FunctionContext): Promise<unknown> {
  try {
    return await ctx.get(key);
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}
