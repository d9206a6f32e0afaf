/**
 * The `lfaas kvs` commands against a real cluster (routing + 3 storage nodes, replication factor
 * 1): put, get, get --all, delete, a type mismatch's exit code and typed message, replicate (a
 * key's factor raised to 3: it then lives on 3 nodes, each holding its value), stat.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { decodeLattice } from '../lattices/index.js';
import { Rpc, bindTransport, pb, readKeyPair, systemClock } from '../protocol/index.js';
import { CLI, TestCluster, eventually, testKeysFolder } from './cluster.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function lfaas(args: readonly string[], routing: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, LFAAS_ROUTING: routing }, timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('lfaas kvs commands', () => {
  const cluster = new TestCluster();
  beforeAll(async () => {
    await cluster.startRouting({ global: 1 });
    for (const id of ['node-a', 'node-b', 'node-c']) await cluster.startNode(id);
    await cluster.waitForRing();
  }, 60_000);
  afterAll(async () => {
    await cluster.stop();
  }, 30_000);

  it('puts, gets, refuses another type with a typed error, deletes', async () => {
    const routing = cluster.routingAddress;
    expect((await lfaas(['kvs', 'put', 'greeting', 'hello'], routing)).code).toBe(0);
    expect(JSON.parse((await lfaas(['kvs', 'get', 'greeting'], routing)).stdout)).toEqual({ key: 'greeting', type: 'Lww', value: 'hello' });
    expect((await lfaas(['kvs', 'put', 'hits', '5', '--type', 'counter', '--ack', 'replicated'], routing)).code).toBe(0);
    expect((await lfaas(['kvs', 'put', 'hits', '3', '--type', 'counter'], routing)).code).toBe(0);
    expect(JSON.parse((await lfaas(['kvs', 'get', 'hits', '--all'], routing)).stdout).value).toBe(8);
    const mismatch = await lfaas(['kvs', 'put', 'hits', '"text"'], routing);
    expect(mismatch.code).toBe(4);
    expect(mismatch.stderr).toContain('KVS_LATTICE_MISMATCH');
    const bad = await lfaas(['kvs', 'put', 'hits', 'x', '--type', 'counter'], routing);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain('EXEC_BAD_VALUE');
    expect((await lfaas(['kvs', 'delete', 'greeting'], routing)).code).toBe(0);
    const gone = await lfaas(['kvs', 'get', 'greeting'], routing);
    // Not found: exit 3, typed.
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain('KVS_KEY_NOT_FOUND: no key');
  }, 60_000);

  it('replicate raises a key\'s replication factor: the key then lives, whole, on 3 nodes', async () => {
    const routing = cluster.routingAddress;
    expect((await lfaas(['kvs', 'put', 'wide', '[1,2,3]', '--type', 'gset'], routing)).code).toBe(0);
    const client = await KvsClient.connect({ routing: [routing] });
    // Reading one replica's own copy (from_replica) is for storage members: this asker uses the storage key.
    const transport = await bindTransport({ keyPair: readKeyPair(testKeysFolder(), 'storage') });
    const rpc = new Rpc(transport, systemClock);
    try {
      expect(await client.replicasOf('wide')).toHaveLength(1);
      const replicate = await lfaas(['kvs', 'replicate', 'wide', '--global', '3'], routing);
      expect(replicate.code, replicate.stderr).toBe(0);
      expect(await eventually(async () => (await fresh(routing, 'wide')).length === 3, 5000)).toBe(true);
      const replicas = await fresh(routing, 'wide');
      const holds = async (replica: string): Promise<boolean> => {
        const response = await rpc.request(replica, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'wide' }], fromReplica: true } }, { timeoutMs: 1000 }).catch(() => undefined);
        const tuple = response?.kvsResponse?.tuples?.[0];
        return tuple?.payload !== undefined && tuple.payload !== null && tuple.payload.length > 0 && JSON.stringify(decodeLattice(tuple.payload).reveal()) === '[1,2,3]';
      };
      expect(await eventually(async () => (await Promise.all(replicas.map(holds))).every(Boolean), 5000)).toBe(true);
    } finally {
      await client.close();
      await rpc.close();
      await transport.close();
    }
  }, 60_000);

  it('stat lists every node with its keys', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const stat = await lfaas(['kvs', 'stat'], cluster.routingAddress);
    expect(stat.code, stat.stderr).toBe(0);
    for (const id of ['node-a', 'node-b', 'node-c']) expect(stat.stdout).toMatch(new RegExp(`${id}\\s+alive`));
  }, 30_000);
});

/** The key's replicas according to a fresh client (no cached addresses). */
async function fresh(routing: string, key: string): Promise<readonly string[]> {
  const client = await KvsClient.connect({ routing: [routing] });
  try {
    return await client.replicasOf(key);
  } finally {
    await client.close();
  }
}
