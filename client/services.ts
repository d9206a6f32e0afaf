/**
 * `listServices`: the services the routing nodes list (discovery, docs/multi-host.md) without a
 * full client: only the routing nodes are needed (no scheduler, no token: anyone may ask), so
 * `lfaas services` answers even while no scheduler runs. Routing nodes are resolved like
 * `LatticeFaas.connect` resolves them (options > LFAAS_ROUTING > the `lfaas up` state file);
 * a connected client asks the same with `faas.services()`.
 *
 * @example
 * ```ts
 * const { schedulers, ingresses, monitors } = await listServices({ routing: ['tcp://10.0.0.1:7100#<key>'] });
 * ```
 */
import { Rpc, bindTransport, clientKeyPair, systemClock } from '../protocol/index.js';
import type { KeyPair } from '../protocol/index.js';
import { resolveCluster } from './cluster-file.js';
import { askServices } from './discovery.js';
import type { ServiceList } from './discovery.js';

export interface ListServicesOptions {
  /** Routing node addresses (absent: LFAAS_ROUTING, else the state file). */
  readonly routing?: readonly string[];
  /** The client's key pair (default: a fresh one; 'insecure' for a plain cluster). */
  readonly keyPair?: KeyPair | 'insecure';
  /** How long each routing node is waited for (default 2 s). */
  readonly timeoutMs?: number;
}

/** The live services by role, merged over every routing node that answered (sorted lists). */
export async function listServices(options: ListServicesOptions = {}): Promise<ServiceList & { readonly routing: readonly string[] }> {
  const cluster = resolveCluster(options.routing === undefined ? {} : { routing: options.routing }, { needSchedulers: false });
  const keyPair = clientKeyPair([...cluster.routing], options.keyPair);
  const rpc = new Rpc(await bindTransport({ host: '127.0.0.1', port: 0, keyPair }), systemClock);
  try {
    return { ...(await askServices(rpc, cluster.routing, options.timeoutMs ?? 2000)), routing: [...cluster.routing] };
  } finally {
    await rpc.close();
    await rpc.transport.close();
  }
}
