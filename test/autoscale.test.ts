/**
 * `lfaas up --autoscale` as a real process tree: the monitor (holding the lease in the KVS) and the
 * local node provider scale the cluster. A load step of slow calls makes it add an executor; data
 * past the per-node memory threshold makes it add a storage node (with a member key of its own),
 * which takes keys while a reader checks every acknowledged key; a key read far above the mean is
 * replicated on both nodes and goes back once cool; once the calls stop, the added executor is
 * drained and removed, its key revoked; once most keys are deleted, a storage node departs (its
 * keys handed off first) and the keys kept are all there. Every decision and outcome is in the event log
 * `lfaas events` prints.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LatticeFaas } from '../client/index.js';
import { HybridClock, Lww } from '../lattices/index.js';
import { readMembers } from '../protocol/index.js';
import { CLI, eventually } from './cluster.js';
import { killLeftovers, pidsIn, startUp } from './up-process.js';

describe('lfaas up --autoscale', () => {
  it('adds an executor under a load step and a storage node past the memory threshold, loses no key, replicates a hot key and lowers it once cool, removes the idle executor, and a storage node once the data shrinks', async () => {
    const data = mkdtempSync(join(tmpdir(), 'lfaas-autoscale-'));
    const up = startUp([
      '--data', data, '--nodes', '1', '--replication', '1', '--shards', '1', '--executors', '1', '--autoscale',
      '--min-executors', '1', '--max-executors', '2', '--min-nodes', '1', '--max-nodes', '2', '--node-memory-high-mb', '1',
      '--scale-up-after-ms', '1000', '--scale-down-after-ms', '3000', '--scale-grace-ms', '2000', '--monitor-period-ms', '500',
      '--hot-key-rate', '200', '--hot-key-replicas', '2', '--hot-key-cool-ms', '3000',
    ]);
    let pids: number[] = [];
    const clients: LatticeFaas[] = [];
    try {
      expect(await eventually(() => up.output().includes('autoscaling:') || up.child.exitCode !== null, 60_000), up.output()).toBe(true);
      const routing = /^\s*export LFAAS_ROUTING=(\S+)$/m.exec(up.output())![1]!;
      const schedulers = /^\s*export LFAAS_SCHEDULERS=(\S+)$/m.exec(up.output())![1]!.split(',');
      const keys = join(data, 'keys');
      const token = readFileSync(join(keys, 'admin.token'), 'utf8').trim();
      const connect = async (): Promise<LatticeFaas> => {
        const made = await LatticeFaas.connect({ routing: [routing], schedulers, token, directCalls: false, capacityRetries: 50 });
        clients.push(made);
        return made;
      };
      const faas = await connect();
      /** `lfaas events`, as a user would run it. */
      const printed = (): string => spawnSync(process.execPath, [CLI, 'events', '--routing', routing, '--token', token], { encoding: 'utf8', timeout: 20_000 }).stdout;
      /** The event log read through the SDK (an admin token reads system keys). */
      const logged = async (): Promise<{ kind: string; action?: string; role?: string; reason: string }[]> => {
        const stored = (await faas.kvs.get('lfaas/events').catch(() => undefined))?.reveal();
        return Array.isArray(stored) ? (stored as { kind: string; action?: string; role?: string; reason: string }[]) : [];
      };
      const happened = async (kind: string, action: string, role: string): Promise<boolean> => (await logged()).some((event) => event.kind === kind && event.action === action && event.role === role);

      // Storage: 1.5 MiB of acknowledged values on a node whose threshold is 1 MiB.
      const clock = new HybridClock('autoscale-test', () => Date.now());
      const written: string[] = [];
      const value = 'v'.repeat(10_000);
      for (let i = 0; i < 150; i++) {
        const key = `autoscale/${i}`;
        await faas.kvs.put(key, Lww.write(clock, `${i}:${value}`), { ack: 'replicated' });
        written.push(key);
      }
      // A reader checks every acknowledged key throughout: none may stay unreadable for longer
      // than the failure timeout (2 s) while keys move to the new node.
      let reading = true;
      const missing: string[] = [];
      const read = async (key: string): Promise<string> => {
        try {
          const got = (await faas.kvs.get(key))?.reveal();
          return typeof got === 'string' && got.startsWith(`${key.slice('autoscale/'.length)}:`) ? 'ok' : `read ${JSON.stringify(got)?.slice(0, 40)}`;
        } catch (error) {
          return (error as Error).message;
        }
      };
      const glitches: string[] = [];
      const reader = (async () => {
        for (let round = 0; reading && round < 10_000; round++) {
          for (const key of written) {
            const first = await read(key);
            if (first === 'ok') continue;
            glitches.push(`${key} in round ${round}: ${first}`);
            const since = Date.now();
            let outcome = first;
            while (outcome !== 'ok' && Date.now() - since < 2000) {
              await new Promise((resolve) => setTimeout(resolve, 100));
              outcome = await read(key);
            }
            if (outcome !== 'ok') missing.push(`${key} in round ${round}: ${outcome}`);
          }
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();

      // A load step: 16 callers of a 300 ms function on one executor of 4 runtimes.
      await faas.register('autoscale-slow', { code: 'module.exports = async () => { await new Promise((resolve) => setTimeout(resolve, 300)); return 1; };' }, { timeoutMs: 10_000 });
      let loading = true;
      const callers = await Promise.all(Array.from({ length: 4 }, connect));
      const load = Promise.all(
        Array.from({ length: 16 }, async (_, n) => {
          for (let i = 0; loading && i < 1000; i++) await callers[n % callers.length]!.call('autoscale-slow', []).catch(() => undefined);
        }),
      );
      const added = await eventually(async () => (await happened('done', 'add', 'executor')) && (await happened('done', 'add', 'storage')), 60_000);
      loading = false;
      await load;
      expect(added, `${printed()}\n${up.output().slice(-3000)}`).toBe(true);
      const members = readMembers(keys);
      expect(members.members.executor.length, 'the new executor has a member key of its own').toBe(2);
      expect(members.members.storage.length, 'the new storage node has a member key of its own').toBe(2);
      expect(up.output()).toMatch(/executor-auto-\d+ started/);
      expect(up.output()).toMatch(/node-auto-\d+ started/);

      // A hot key: read far above the mean, it is replicated on both nodes (reads spread over
      // them); once its reads stop, its factor goes back to 1.
      const hotKey = written[0]!;
      const happenedFor = async (key: string, replicas: number): Promise<boolean> =>
        (await logged()).some((event) => event.kind === 'done' && event.action === 'replicate' && (event as { node?: string }).node === key && event.reason.startsWith(`${replicas} replicas`));
      let hammering = true;
      const hammer = Promise.all(
        callers.map(async (caller) => {
          for (let i = 0; hammering && i < 100_000; i++) await caller.kvs.get(hotKey).catch(() => undefined);
        }),
      );
      const raised = await eventually(() => happenedFor(hotKey, 2), 30_000);
      hammering = false;
      await hammer;
      expect(raised, `${printed()}\n${up.output().slice(-2000)}`).toBe(true);
      expect(await eventually(async () => (await faas.kvs.replicasOf(hotKey)).length === 2, 10_000), 'the hot key lives on both nodes').toBe(true);
      expect(await eventually(() => happenedFor(hotKey, 1), 30_000), `${printed()}`).toBe(true);

      // Idle: the added executor is drained and removed, its key revoked.
      const removed = await eventually(() => happened('done', 'remove', 'executor'), 60_000);
      expect(removed, `${printed()}\n${up.output().slice(-3000)}`).toBe(true);
      const after = readMembers(keys);
      expect(after.members.executor.length, 'the removed executor is no member any more').toBe(1);
      expect(after.revoked.length, 'its key is revoked').toBeGreaterThanOrEqual(1);
      reading = false;
      await reader;
      expect(missing, `every acknowledged key stayed readable (reads that failed once: ${glitches.join('; ')})`).toEqual([]);
      if (glitches.length > 0) console.log(`[autoscale] reads that failed once and succeeded within 2 s: ${glitches.join('; ')}`);
      for (const key of written) expect(((await faas.kvs.get(key))?.reveal() as string).startsWith(`${key.slice('autoscale/'.length)}:`)).toBe(true);

      // Scale-down of the storage tier: most keys deleted, memory falls under half the threshold
      // and requests stop, so a node departs gracefully (its keys handed off first): the keys kept
      // are all readable after, and its key is revoked.
      const kept = written.slice(0, 10);
      for (const key of written.slice(10)) await faas.kvs.delete(key, { ack: 'replicated' });
      const departed = await eventually(() => happened('done', 'remove', 'storage'), 60_000);
      expect(departed, `${printed()}\n${up.output().slice(-3000)}`).toBe(true);
      for (const key of kept) expect(((await faas.kvs.get(key))?.reveal() as string).startsWith(`${key.slice('autoscale/'.length)}:`), key).toBe(true);
      expect(readMembers(keys).members.storage.length, 'one storage member left').toBe(1);
      // The log says why: decisions with their reasons, and who held the lease.
      const log = printed();
      expect(log).toMatch(/lease/);
      expect(log).toMatch(/decided\s+add executor/);
      expect(log).toMatch(/average executor demand/);
      expect(log).toMatch(/memory \d+ KiB per node > 1024 KiB/);
      expect(log).toMatch(/requests\/s per node < 50 and memory under half the threshold/);
      pids = pidsIn(up.output());
    } finally {
      for (const client of clients) await client.close().catch(() => undefined);
      pids = pids.length > 0 ? pids : pidsIn(up.output());
      up.child.kill('SIGTERM');
      await up.exited;
      killLeftovers(pids);
      rmSync(data, { recursive: true, force: true });
    }
  }, 180_000);
});
