/**
 * Waits (bounded) until the cluster's storage answers real requests: the routing nodes' ring
 * spreads keys over every given shard, and then every shard answers a KVS GET sent to it
 * directly, for a key the ring says it holds, without a wrong-node refusal (its own view of the
 * ring agrees with the routing node's) and faster than a client's request timeout. What a launcher, a
 * benchmark or a test waits for after starting storage nodes, instead of sleeping.
 */
import { KvsClient } from '../client/index.js';
import { ErrorCode, isLfaasError } from '../lattices/index.js';
import { Rpc, bindTransport, clientKeyPair, clientToken, pb, systemClock } from '../protocol/index.js';

/** Keys probed to cover every shard. */
const PROBE_KEYS = 64;
const ATTEMPTS_MAX = 400;
const PAUSE_MS = 50;
/**
 * A shard must answer the probe GET (a key it does not have) within this: less than the clients'
 * request timeout (1000 ms). Right after a restart a shard forwards a missed read to the key's
 * previous replicas (a migration in progress) and waits up to its outbound timeout when those are
 * gone, so a client's first requests would time out: ready waits until misses answer at once.
 */
const SHARD_ANSWER_MS = 800;

export async function waitForRing(routing: readonly string[], shards: readonly string[], timeoutMs = 10_000): Promise<void> {
  await waitForShards(routing, shards, timeoutMs, false);
}

/**
 * {@link waitForRing}, then a GET answered by each shard directly (its ring agrees, it is not
 * busy reloading). Rejects with the shards that did not answer when `timeoutMs` is up.
 */
export async function waitForShards(routing: readonly string[], shards: readonly string[], timeoutMs = 10_000, direct = true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let missing: readonly string[] = shards;
  let silent: readonly string[] = [];
  for (let attempt = 0; attempt < ATTEMPTS_MAX && Date.now() < deadline; attempt++) {
    // A fresh client each time: a cached address must not hide a ring change.
    const client = await KvsClient.connect({ routing, requestTimeoutMs: 500, connectTimeoutMs: 0 });
    try {
      const keyOf = new Map<string, string>();
      const replicas = await Promise.all(Array.from({ length: PROBE_KEYS }, (_, i) => client.replicasOf(`ring-probe-${i}`).catch(() => [] as readonly string[])));
      replicas.forEach((list, i) => {
        for (const replica of list) if (!keyOf.has(replica)) keyOf.set(replica, `ring-probe-${i}`);
      });
      missing = shards.filter((shard) => !keyOf.has(shard));
      if (missing.length === 0) {
        if (!direct) return;
        silent = await shardsNotAnswering(routing, shards, keyOf, Math.max(200, Math.min(SHARD_ANSWER_MS, deadline - Date.now())));
        if (silent.length === 0) return;
      }
    } finally {
      await client.close();
    }
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  if (missing.length > 0) throw new Error(`the ring did not list every storage shard within ${timeoutMs} ms (missing: ${missing.join(' ')})`);
  throw new Error(`storage shards did not answer a GET within ${timeoutMs} ms: ${silent.join(' ')}`);
}

/** The shards that did not answer a direct GET of their probe key (a wrong-node refusal counts as no answer). */
async function shardsNotAnswering(routing: readonly string[], shards: readonly string[], keyOf: ReadonlyMap<string, string>, timeoutMs: number): Promise<string[]> {
  const transport = await bindTransport({ keyPair: clientKeyPair([...routing, ...shards]) });
  const token = clientToken(undefined);
  const rpc = new Rpc(transport, systemClock, token === undefined ? {} : { token });
  try {
    const answered = await Promise.all(
      shards.map(async (shard) => {
        const key = keyOf.get(shard)!;
        try {
          const response = await rpc.request(shard, { kvsRequest: { kind: pb.RequestKind.GET, ack: pb.AckMode.ACK_LOCAL, tuples: [{ key }] } }, { timeoutMs });
          const code = response.kvsResponse?.tuples?.[0]?.error?.code ?? 0;
          return code !== pb.ErrorCode.KVS_WRONG_NODE && code !== pb.ErrorCode.KVS_BUSY && code !== pb.ErrorCode.TRANSPORT_TIMEOUT;
        } catch (error) {
          // A refused token still proves the shard serves; a timeout does not.
          return isLfaasError(error) && error.code !== ErrorCode.TRANSPORT_TIMEOUT && error.code !== ErrorCode.KVS_WRONG_NODE && error.code !== ErrorCode.KVS_BUSY;
        }
      }),
    );
    return shards.filter((_, index) => !answered[index]);
  } finally {
    await rpc.close();
    await transport.close();
  }
}
