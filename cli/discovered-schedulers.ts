/**
 * The schedulers of a role that was given none (`--schedulers` absent): discovered from the
 * routing nodes (client/discovery.ts) on a socket of its own, and kept current in place (the same
 * array, so whoever holds it reads the current list) until `stop()`. Given a list, that list,
 * static, and nothing runs.
 */
import { ServiceFollower, discoverSchedulers } from '../client/index.js';
import { Rpc, bindTransport, systemClock } from '../protocol/index.js';
import type { KeyPair } from '../protocol/index.js';

/** How long a role started without schedulers waits for the routing nodes to list one. */
export const DISCOVERY_WAIT_MS = 120_000;

export interface DiscoveredSchedulers {
  /** The current list (mutated in place while discovery runs). */
  readonly list: string[];
  stop(): Promise<void>;
}

export async function schedulersFor(options: { readonly routing: readonly string[]; readonly schedulers: readonly string[]; readonly keyPair: KeyPair | 'insecure'; readonly host?: string; readonly advertise?: string }): Promise<DiscoveredSchedulers> {
  if (options.schedulers.length > 0) return { list: [...options.schedulers], stop: async () => {} };
  const rpc = new Rpc(await bindTransport({ host: options.host ?? '127.0.0.1', ...(options.advertise === undefined ? {} : { advertise: options.advertise }), port: 0, keyPair: options.keyPair }), systemClock);
  let list: string[];
  try {
    list = await discoverSchedulers(rpc, options.routing, Date.now() + DISCOVERY_WAIT_MS);
  } catch (error) {
    await rpc.close();
    await rpc.transport.close();
    throw error;
  }
  const follower = new ServiceFollower(rpc, options.routing, list);
  return {
    list,
    stop: async () => {
      follower.stop();
      await rpc.close();
      await rpc.transport.close();
    },
  };
}
