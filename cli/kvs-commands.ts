/**
 * `lfaas kvs get|put|delete|replicate|stat|depart`: the KVS from the command line, through any
 * routing node: `--routing`, else LFAAS_ROUTING, else the `lfaas up` state file. `--json`: one
 * JSON document on stdout.
 * Values are typed: `--type lww` (default: a JSON value in an LWW register), `counter` (an
 * integer added to a PN-counter under a fresh writer id), `gset` (a JSON array of elements),
 * `max`, `min` (a number), `bool`.
 */
import { randomUUID } from 'node:crypto';
import { CONNECT_TIMEOUT_MS, KvsClient, resolveCluster } from '../client/index.js';
import type { AckMode } from '../client/index.js';
import { ErrorCode, LfaasError, PLAIN_WRITE_TYPES, isLfaasError, latticeOfPlain, latticeTypeName } from '../lattices/index.js';
import type { AnyLattice, PlainWriteType } from '../lattices/index.js';
import { Rpc, bindTransport, clientKeyPair, clientToken, encodeEnvelope, readKeyPair, systemClock } from '../protocol/index.js';

export const VALUE_TYPES = PLAIN_WRITE_TYPES;
export type ValueType = PlainWriteType;

/** Parses a command-line value into a lattice of `type`; a typed error on bad input. */
export function parseValue(text: string, type: ValueType): AnyLattice {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // A bare word is a string (`lfaas kvs put greeting hello`).
    json = text;
  }
  return latticeOfPlain(json, type, `cli-${randomUUID()}`);
}

/** What the KVS commands take: the routing nodes (absent: LFAAS_ROUTING, else the state file) and --json. */
export interface KvsCommandOptions {
  readonly routing?: string;
  readonly json?: boolean;
}

const routingList = (routing: string | undefined): string[] | undefined => (routing === undefined || routing === '' ? undefined : routing.split(',').filter((address) => address.length > 0));

async function withClient<T>(routing: string | undefined, body: (client: KvsClient) => Promise<T>): Promise<T> {
  const list = routingList(routing);
  const client = await KvsClient.connect({ ...(list === undefined ? {} : { routing: list }), requestTimeoutMs: 2000 });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** Prints `doc` as JSON with --json, `text` otherwise. */
function print(options: KvsCommandOptions, doc: unknown, text: string): void {
  console.log(options.json === true ? JSON.stringify(doc) : text);
}

export async function kvsGet(key: string, options: KvsCommandOptions & { all: boolean }): Promise<void> {
  const value = await withClient(options.routing, (client) => (options.all ? client.getAll(key) : client.get(key)));
  if (value === undefined) throw new LfaasError(ErrorCode.KVS_KEY_NOT_FOUND, `no key ${JSON.stringify(key)}`);
  console.log(JSON.stringify({ key, type: latticeTypeName(value.type), value: value.reveal() }));
}

export async function kvsPut(key: string, text: string, options: KvsCommandOptions & { type: ValueType; ack: AckMode }): Promise<void> {
  const value = parseValue(text, options.type);
  await withClient(options.routing, (client) => client.put(key, value, { ack: options.ack }));
  print(options, { key, type: options.type, ack: options.ack, ok: true }, `ok (${options.ack})`);
}

export async function kvsDelete(key: string, options: KvsCommandOptions & { ack: AckMode }): Promise<void> {
  await withClient(options.routing, (client) => client.delete(key, { ack: options.ack }));
  print(options, { key, ack: options.ack, deleted: true }, `deleted (${options.ack})`);
}

export async function kvsReplicate(key: string, options: KvsCommandOptions & { global: number; local: number }): Promise<void> {
  await withClient(options.routing, (client) => client.setReplication(key, { global: options.global, local: options.local }));
  print(options, { key, global: options.global, local: options.local }, `${key}: ${options.global} nodes x ${options.local} shards`);
}

/** One storage node's row of `kvs stat`. */
interface NodeStat {
  readonly id: string;
  readonly state: 'alive' | 'departed';
  readonly shards: number;
  readonly keys: number | null;
  readonly bytes: number | null;
  readonly requests: { readonly get: number | null; readonly put: number | null; readonly delete: number | null };
  readonly metrics: string | null;
  readonly reachable: boolean;
}

/** The ring from the routing node, and each node's shard statistics from its metrics endpoint. */
export async function kvsStat(options: KvsCommandOptions): Promise<void> {
  const list = routingList(options.routing);
  const cluster = resolveCluster({ ...(list === undefined ? {} : { routing: list }) }, { needSchedulers: false });
  const transport = await bindTransport({ keyPair: clientKeyPair(cluster.routing) });
  const token = clientToken(cluster.token);
  const rpc = new Rpc(transport, systemClock, token === undefined ? {} : { token });
  try {
    const routing = cluster.routing[0]!;
    const response = await rpc.request(routing, { ringRequest: { subscriber: transport.address, leaseMs: 0 } }, { timeoutMs: CONNECT_TIMEOUT_MS }).catch((error: unknown) => {
      if (isLfaasError(error) && error.code === ErrorCode.TRANSPORT_TIMEOUT) {
        throw new LfaasError(ErrorCode.TRANSPORT_NO_CLUSTER, `no cluster at ${routing}: is \`lfaas up\` running? (no answer within ${CONNECT_TIMEOUT_MS} ms${cluster.source === 'options' ? '' : `; the addresses came from ${cluster.source}`})`, { cause: error });
      }
      throw error;
    });
    const ring = response.ringUpdate;
    const rows: NodeStat[] = [];
    const lines: string[] = [];
    for (const node of ring?.nodes ?? []) {
      const state = node.departed ? 'departed' : 'alive';
      let keys = '-';
      let bytes = '-';
      const counts = { get: '-', put: '-', delete: '-' };
      const host = /^tcp:\/\/([^:]+):/.exec(node.address ?? '')?.[1] ?? '127.0.0.1';
      const metricsUrl = node.metricsPort ? `http://${host}:${node.metricsPort}/metrics` : '';
      if (!node.departed && metricsUrl) {
        try {
          const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) })).text();
          const sum = (name: string, label?: string): number => {
            let total = 0;
            for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && (label === undefined || line.includes(label))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
            return total;
          };
          keys = String(sum('lfaas_kvs_keys'));
          bytes = String(sum('lfaas_kvs_occupancy_bytes'));
          counts.get = String(sum('lfaas_kvs_requests_total', 'kind="get"'));
          counts.put = String(sum('lfaas_kvs_requests_total', 'kind="put"'));
          counts.delete = String(sum('lfaas_kvs_requests_total', 'kind="delete"'));
        } catch {
          keys = 'unreachable';
        }
      }
      const count = (text: string): number | null => (/^\d+(\.\d+)?$/.test(text) ? Number(text) : null);
      rows.push({
        id: node.id ?? '',
        state,
        shards: node.shardAddresses?.length ?? 0,
        keys: count(keys),
        bytes: count(bytes),
        requests: { get: count(counts.get), put: count(counts.put), delete: count(counts.delete) },
        metrics: metricsUrl || null,
        reachable: keys !== 'unreachable',
      });
      lines.push(
        `${(node.id ?? '').padEnd(10)} ${state.padEnd(9)} ${String(node.shardAddresses?.length ?? 0).padEnd(7)} ${keys.padEnd(9)} ${bytes.padEnd(11)} ${counts.get.padEnd(7)} ${counts.put.padEnd(7)} ${counts.delete.padEnd(7)} ${metricsUrl}`,
      );
    }
    if (options.json === true) {
      console.log(JSON.stringify({ epoch: Number(ring?.epoch ?? 0), replication: { global: ring?.defaultGlobal ?? null, local: ring?.defaultLocal ?? null }, nodes: rows }));
    } else {
      console.log(`ring epoch ${String(ring?.epoch ?? 0)}, replication factor ${ring?.defaultGlobal ?? '?'} nodes x ${ring?.defaultLocal ?? '?'} shards per key`);
      console.log('node       state     shards  keys      bytes       GET     PUT     DELETE  metrics');
      for (const line of lines) console.log(line);
    }
  } finally {
    await rpc.close();
    await transport.close();
  }
}

/** Asks a storage node (its control address) to leave gracefully, handing its keys off. */
/**
 * Asks a storage node to hand off and leave. A departure is for members: with `keys`, the request
 * is sent with `<keys>/<keyName ?? 'routing'>.key`; without, plain (an `--insecure` cluster).
 */
export async function kvsDepart(control: string, nodeId: string, options: { keys?: string; keyName?: string; json?: boolean } = {}): Promise<void> {
  const transport = await bindTransport({ keyPair: options.keys === undefined ? clientKeyPair([control]) : readKeyPair(options.keys, options.keyName ?? 'routing') });
  try {
    await transport.send(control, encodeEnvelope({ sender: transport.address, nodeDepart: { nodeId, graceful: true } }));
    // Give the socket a moment to flush before closing (linger is 0).
    await new Promise((done) => setTimeout(done, 100));
    console.log(options.json === true ? JSON.stringify({ node: nodeId, control, asked: 'depart' }) : `asked ${nodeId} at ${control} to depart`);
  } finally {
    await transport.close();
  }
}
