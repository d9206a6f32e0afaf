/**
 * `lfaas kvs get|put|delete|replicate|stat|depart`: the KVS from the command line, through any routing node.
 * Values are typed: `--type lww` (default: a JSON value in an LWW register), `counter` (an
 * integer added to a PN-counter under a fresh writer id), `gset` (a JSON array of elements),
 * `max`, `min` (a number), `bool`.
 */
import { randomUUID } from 'node:crypto';
import { KvsClient } from '../client/index.js';
import type { AckMode } from '../client/index.js';
import { Bool, Counter, ErrorCode, GSet, HybridClock, LfaasError, Lww, Max, Min, latticeTypeName } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { Rpc, ZmqTransport, clientKeyPair, clientToken, encodeEnvelope, readKeyPair, systemClock } from '../protocol/index.js';

export const VALUE_TYPES = ['lww', 'counter', 'gset', 'max', 'min', 'bool'] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

/** Parses a command-line value into a lattice of `type`; a typed error on bad input. */
export function parseValue(text: string, type: ValueType): AnyLattice {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // A bare word is a string (`lfaas kvs put greeting hello`).
    json = text;
  }
  const writer = `cli-${randomUUID()}`;
  const number = (): number => {
    if (typeof json !== 'number' || !Number.isFinite(json)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `a ${type} value must be a number, got ${text}`);
    return json;
  };
  switch (type) {
    case 'lww':
      return Lww.write(new HybridClock(writer, () => Date.now()), json);
    case 'counter': {
      const amount = number();
      if (!Number.isSafeInteger(amount)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'a counter step must be an integer');
      return amount >= 0 ? Counter.ZERO.increment(writer, amount) : Counter.ZERO.decrement(writer, -amount);
    }
    case 'gset':
      if (!Array.isArray(json)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'a gset value must be a JSON array');
      return GSet.of(...(json as unknown[]));
    case 'max':
      return new Max(number());
    case 'min':
      return new Min(number());
    case 'bool':
      if (typeof json !== 'boolean') throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'a bool value must be true or false');
      return Bool.of(json);
  }
}

async function withClient<T>(routing: string, body: (client: KvsClient) => Promise<T>): Promise<T> {
  const client = await KvsClient.connect({ routing: routing.split(',').filter((address) => address.length > 0), requestTimeoutMs: 2000 });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

export async function kvsGet(key: string, options: { routing: string; all: boolean }): Promise<void> {
  const value = await withClient(options.routing, (client) => (options.all ? client.getAll(key) : client.get(key)));
  if (value === undefined) {
    console.error(`no key ${JSON.stringify(key)}`);
    process.exitCode = 2;
    return;
  }
  console.log(JSON.stringify({ key, type: latticeTypeName(value.type), value: value.reveal() }));
}

export async function kvsPut(key: string, text: string, options: { routing: string; type: ValueType; ack: AckMode }): Promise<void> {
  const value = parseValue(text, options.type);
  await withClient(options.routing, (client) => client.put(key, value, { ack: options.ack }));
  console.log(`ok (${options.ack})`);
}

export async function kvsDelete(key: string, options: { routing: string; ack: AckMode }): Promise<void> {
  await withClient(options.routing, (client) => client.delete(key, { ack: options.ack }));
  console.log(`deleted (${options.ack})`);
}

export async function kvsReplicate(key: string, options: { routing: string; global: number; local: number }): Promise<void> {
  await withClient(options.routing, (client) => client.setReplication(key, { global: options.global, local: options.local }));
  console.log(`${key}: ${options.global} nodes x ${options.local} shards`);
}

/** The ring from the routing node, and each node's shard statistics from its metrics endpoint. */
export async function kvsStat(options: { routing: string }): Promise<void> {
  const transport = await ZmqTransport.bind({ keyPair: clientKeyPair(options.routing.split(',')) });
  const token = clientToken(undefined);
  const rpc = new Rpc(transport, systemClock, token === undefined ? {} : { token });
  try {
    const routing = options.routing.split(',')[0]!;
    const response = await rpc.request(routing, { ringRequest: { subscriber: transport.address, leaseMs: 0 } }, { timeoutMs: 2000, retries: 1 });
    const ring = response.ringUpdate;
    console.log(`ring epoch ${String(ring?.epoch ?? 0)}, replication factor ${ring?.defaultGlobal ?? '?'} nodes x ${ring?.defaultLocal ?? '?'} shards per key`);
    console.log('node       state     shards  keys      bytes       GET     PUT     DELETE  metrics');
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
      console.log(
        `${(node.id ?? '').padEnd(10)} ${state.padEnd(9)} ${String(node.shardAddresses?.length ?? 0).padEnd(7)} ${keys.padEnd(9)} ${bytes.padEnd(11)} ${counts.get.padEnd(7)} ${counts.put.padEnd(7)} ${counts.delete.padEnd(7)} ${metricsUrl}`,
      );
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
export async function kvsDepart(control: string, nodeId: string, options: { keys?: string; keyName?: string } = {}): Promise<void> {
  const transport = await ZmqTransport.bind({ keyPair: options.keys === undefined ? clientKeyPair([control]) : readKeyPair(options.keys, options.keyName ?? 'routing') });
  try {
    await transport.send(control, encodeEnvelope({ sender: transport.address, nodeDepart: { nodeId, graceful: true } }));
    // Give the socket a moment to flush before closing (linger is 0).
    await new Promise((done) => setTimeout(done, 100));
    console.log(`asked ${nodeId} at ${control} to depart`);
  } finally {
    await transport.close();
  }
}
