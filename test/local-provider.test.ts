/**
 * The local node provider over real processes: it adds a storage node with a member key of its
 * own, and removes it by a graceful departure; a kill -9 of the node in the middle of the
 * departure loses nothing acknowledged (replication factor 1: the node's keys exist nowhere else
 * until handed off; the node is frozen with SIGSTOP when asked, then killed): the supervisor
 * restarts it on its ports and data, the provider asks again,
 * and once it left every key is readable and its key is revoked.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { LocalProvider, Supervisor, portOf } from '../cli/index.js';
import type { SupervisedRole } from '../cli/index.js';
import { HybridClock, Lww } from '../lattices/index.js';
import { readMembers } from '../protocol/index.js';
import { TestCluster, isAlive, testKeysFolder } from './cluster.js';

describe('the local node provider', () => {
  const cluster = new TestCluster();
  const lines: string[] = [];
  const supervisor = new Supervisor((line) => lines.push(line));
  let client: KvsClient | undefined;

  afterAll(async () => {
    supervisor.stopWatching();
    for (const child of supervisor.children()) child.kill('SIGKILL');
    await client?.close();
    await cluster.stop();
  });

  it('a kill -9 of a departing node loses no acknowledged key: the node is restarted and asked again', async () => {
    await cluster.startRouting({ global: 1 });
    const keys = testKeysFolder();
    const routing = cluster.routingAddress;
    const data = join(cluster.data, 'provider');
    const storage = (name: string, keyName: string | undefined): SupervisedRole => ({
      name,
      args: (last) => [
        'kvs', '--keys', keys, ...(keyName === undefined ? [] : ['--key-name', keyName]), '--id', name, '--routing', routing, '--shards', '2', '--data', data, '--threads', 'off',
        ...(last === undefined ? ['--port', '0', '--metrics-port', '-1'] : ['--port', portOf(last['control']), '--shard-ports', (last['shards'] as string[]).map(portOf).join(','), '--metrics-port', '-1']),
      ],
    });
    const provider = new LocalProvider({ supervisor, keys, routing: [routing], roles: { storage, executor: () => { throw new Error('no executors here'); } }, log: (line) => lines.push(line) });
    provider.adopt('storage', 'node-0', await supervisor.start(storage('node-0', undefined)));
    const added = await provider.add('storage');
    expect(added).toBe('node-auto-1');
    expect(readMembers(keys).members.storage).toHaveLength(2);

    client = await KvsClient.connect({ routing: [routing], requestTimeoutMs: 2000 });
    const clock = new HybridClock('provider-test', () => Date.now());
    const written = Array.from({ length: 5000 }, (_, i) => `provider/${i}`);
    for (let start = 0; start < written.length; start += 1000) {
      await Promise.all(written.slice(start, start + 1000).map((key) => client!.put(key, Lww.write(clock, `${key.slice('provider/'.length)}:${'x'.repeat(100)}`), { ack: 'durable' })));
    }
    const before = supervisor.readyOf('node-auto-1')!;
    // The node is frozen (SIGSTOP) before it is asked to depart, so the kill lands with the
    // departure asked and nothing handed off yet, whatever the machine's speed.
    process.kill(Number(before['pid']), 'SIGSTOP');
    const removal = provider.remove('storage', 'node-auto-1');
    await new Promise((resolve) => setTimeout(resolve, 300));
    process.kill(Number(before['pid']), 'SIGKILL');
    await removal;
    expect(lines.some((line) => /node-auto-1 .*restarting it on its ports/.test(line)), lines.join('\n')).toBe(true);
    expect(lines.some((line) => /node-auto-1 .*left the cluster/.test(line)), lines.join('\n')).toBe(true);
    expect(isAlive(Number(supervisor.readyOf('node-auto-1')?.['pid'] ?? before['pid']))).toBe(false);
    // Every acknowledged key is there (on node-0 now).
    const missing: string[] = [];
    for (let start = 0; start < written.length; start += 1000) {
      const batch = written.slice(start, start + 1000);
      const values = await Promise.all(batch.map((key) => client!.get(key).then((value) => value?.reveal(), () => undefined)));
      batch.forEach((key, i) => {
        const value = values[i];
        if (typeof value !== 'string' || !value.startsWith(`${key.slice('provider/'.length)}:`)) missing.push(key);
      });
    }
    expect(missing.slice(0, 20), `${missing.length} keys missing`).toEqual([]);
    expect(readMembers(keys).members.storage).toHaveLength(1);
    expect(provider.nodes('storage')).toEqual(['node-0']);
  }, 120_000);
});
