/**
 * `lfaas up` as a real process tree: with `--demo` it starts a routing node, storage nodes, a
 * scheduler and executors, runs the demos (the shared counter through functions, the DAG
 * square(increment(x)) sync and async, the sandbox, owners, a hot key replicated and put back),
 * stops every child and exits 0; killed with SIGKILL (no
 * chance to stop anything), its children notice their closed stdin and exit by themselves.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LatticeFaas } from '../client/index.js';
import { FAILPOINT_MACHINE_THROWS, Rpc, bindTransport, systemClock } from '../protocol/index.js';
import { eventually } from './cluster.js';
import { isGone, killLeftovers, pidsIn, startUp } from './up-process.js';

describe('lfaas up', () => {
  it('--demo: runs the demo, exits 0, and leaves no child process behind', async () => {
    const data = mkdtempSync(join(tmpdir(), 'lfaas-up-demo-'));
    const up = startUp(['--demo', '--data', data]);
    let pids: number[] = [];
    try {
      const timeout = setTimeout(() => up.child.kill('SIGKILL'), 150_000);
      const { code, signal } = await up.exited;
      clearTimeout(timeout);
      const output = up.output();
      expect({ code, signal }, output).toEqual({ code: 0, signal: null });
      expect(output).toContain('cluster ready');
      // Addresses name their keys: the cluster is secure by default, with keys made in the data folder.
      const routing = /^\s*export LFAAS_ROUTING=(tcp:\/\/127\.0\.0\.1:\d+#[A-Za-z0-9_-]{43})$/m.exec(output);
      const scheduler = /^\s*\[\d+\/\d+\] scheduler-0\s+pid \d+\s+(tcp:\/\/127\.0\.0\.1:\d+#[A-Za-z0-9_-]{43})/m.exec(output);
      expect(output).toContain(`keys: ${data}/keys (made now`);
      expect(existsSync(join(data, 'keys', 'members.json'))).toBe(true);
      expect(routing, output).not.toBeNull();
      expect(output).toContain(`export LFAAS_SCHEDULERS=${scheduler![1]}`);
      // The shared counter through functions: the Counter lattice kept every call's increment.
      expect(output).toContain('counter-increment kept all 100 increments');
      expect(output).toMatch(/^\s*counter-increment \(Counter lattice\)\s+100\s+100\s+0\s*$/m);
      // The read-modify-write row: value, expected, lost; and the summary's lost count.
      const row = /^\s*naive-increment \(read-modify-write\)\s+(\d+)\s+100\s+(\d+)\s*$/m.exec(output);
      expect(row, output).not.toBeNull();
      expect(Number(row![1]) + Number(row![2])).toBe(100);
      expect(Number(row![1])).toBeGreaterThanOrEqual(1);
      expect(output).toMatch(new RegExp(`naive-increment's read-modify-write lost ${row![2]} concurrent updates`));
      // The DAG square(increment(x)) for x = 1..5, then x = 6 through callDagAsync.
      for (const [x, y] of [[1, 4], [2, 9], [3, 16], [4, 25], [5, 36]] as const) expect(output).toMatch(new RegExp(`^\\s*${x}\\s+${y}\\s+${y}\\s*$`, 'm'));
      expect(output).toMatch(/^\s*6\s+49\s+49\s+\(callDagAsync/m);
      expect(output).toContain('every DAG result is right');
      expect(output).not.toContain('WRONG');
      // Owners: bob's reads, writes, calls and listings of alice's names refused; hers work.
      expect(output).toMatch(/bob: {3}kvs get alice\/diary\s+-> UNAUTHORISED$/m);
      expect(output).toMatch(/bob: {3}call bob\/read-key\('alice\/diary'\) \(runs as bob\)\s+-> "UNAUTHORISED"$/m);
      expect(output).toContain('each owner reached only its own namespace.');
      // The hot key: on every shard of all 3 nodes while read, back to 2 once cool, with the events.
      expect(output).toMatch(/^\s*while read hundreds of times a second: 6 replica shards/m);
      expect(output).toMatch(/^\s*cooled \d+ s after the last read: 2 replica shards$/m);
      expect(output).toMatch(/done replicate: 3 replicas: hot: .*; on 2 shards in each node/);
      expect(output).toMatch(/done replicate: 2 replicas: cooled: /);
      // Cold starts: the cold chain's first call and warm calls answer right.
      expect(output).toMatch(/^\s*cold call \(cold-a loaded from a stem cell; .*\d+\.\d ms -> 3$/m);
      expect(output).toMatch(/^\s*warm calls, median of 5:\s+\d+\.\d ms -> 3$/m);
      expect(output).toContain('every cold-chain result is right');
      // Retwis: a timeline in the causal mode, newest first, the reply linked to its post.
      expect(output).toMatch(/^\s*cy_\w+\s+and never lose a write\s+\(reply to bob_\w+: "lattices merge"\)$/m);
      expect(output).toMatch(/timeline is right: newest first, the reply linked to its post\./);
      expect(output).not.toContain('UNEXPECTED');
      pids = pidsIn(output);
      // One routing node, three storage nodes, one scheduler, two executors, the HTTP ingress and the dashboard (the defaults).
      expect(pids).toHaveLength(9);
      expect(new Set(pids).size).toBe(9);
      expect(await eventually(() => pids.every(isGone), 5000), `still running: ${pids.filter((pid) => !isGone(pid)).join(', ')}`).toBe(true);
    } finally {
      killLeftovers(pids);
      rmSync(data, { recursive: true, force: true });
    }
  }, 160_000);

  it('--demo counter runs that demo alone and exits 0; an unknown demo name is refused with exit 2', async () => {
    const data = mkdtempSync(join(tmpdir(), 'lfaas-up-counter-'));
    let pids: number[] = [];
    try {
      const wrong = startUp(['--demo', 'nope', '--data', data]);
      const refused = await wrong.exited;
      expect(refused.code, wrong.output()).toBe(2);
      expect(wrong.output()).toContain('--demo nope: the demos are counter, dag, sandbox, owners, hotkey, coldstart, retwis');
      const up = startUp(['--demo', 'counter', '--data', data]);
      const timeout = setTimeout(() => up.child.kill('SIGKILL'), 60_000);
      const { code } = await up.exited;
      clearTimeout(timeout);
      const output = up.output();
      expect(code, output).toBe(0);
      expect(output).toMatch(/^\s*counter-increment \(Counter lattice\)\s+100\s+100\s+0\s*$/m);
      expect(output).not.toContain('demo 2');
      pids = pidsIn(output);
      expect(await eventually(() => pids.every(isGone), 5000)).toBe(true);
    } finally {
      killLeftovers(pids);
      rmSync(data, { recursive: true, force: true });
    }
  }, 90_000);

  it('SIGKILL of `up` itself: every child sees its stdin close and exits within 5 s', async () => {
    const data = mkdtempSync(join(tmpdir(), 'lfaas-up-kill-'));
    const up = startUp(['--data', data]);
    let pids: number[] = [];
    try {
      expect(await eventually(() => up.output().includes('cluster ready') || up.child.exitCode !== null, 30_000), up.output()).toBe(true);
      expect(up.output()).toContain('cluster ready');
      pids = pidsIn(up.output());
      expect(pids).toHaveLength(9);
      expect(pids.every((pid) => !isGone(pid))).toBe(true);
      process.kill(up.child.pid!, 'SIGKILL');
      expect(await up.exited).toEqual({ code: null, signal: 'SIGKILL' });
      expect(await eventually(() => pids.every(isGone), 5000), `still running 5 s after up was killed: ${pids.filter((pid) => !isGone(pid)).join(', ')}`).toBe(true);
    } finally {
      if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGKILL');
      killLeftovers(pids);
      // lmdb files may still be open for a moment after an exit: retry the removal briefly.
      await eventually(() => {
        try {
          rmSync(data, { recursive: true, force: true });
          return true;
        } catch {
          return false;
        }
      }, 2000);
    }
  }, 60_000);

  it('a role that hits a bug exits with EXIT_FATAL, logged with its context, and the supervisor restarts it on its address; kill -9 too', async () => {
    const data = mkdtempSync(join(tmpdir(), 'lfaas-up-crash-'));
    const up = startUp(['--data', data, '--executors', '1'], { LFAAS_FAILPOINTS: 'machine-throws' });
    let pids: number[] = [];
    const rpc = new Rpc(await bindTransport(), systemClock);
    try {
      // The whole ready report (its last line), not just its first: the export lines come in later chunks.
      await eventually(() => up.output().includes('running; Ctrl-C') || up.child.exitCode !== null, 60_000);
      expect(up.output(), 'lfaas up got ready').toContain('running; Ctrl-C');
      const routing = /^\s*export LFAAS_ROUTING=(\S+)$/m.exec(up.output())![1]!;
      const scheduler = /^\s*\[\d+\/\d+\] scheduler-0\s+pid (\d+)\s+(tcp:\/\/\S+)/m.exec(up.output());
      const executor = /^\s*\[\d+\/\d+\] executor-0\s+pid (\d+)\s+(tcp:\/\/\S+)/m.exec(up.output());
      expect(scheduler, up.output()).not.toBeNull();
      const [schedulerPid, schedulerAddress] = [Number(scheduler![1]), scheduler![2]!];
      // The failpoint makes the scheduler's shell behave as if its machine threw: a bug.
      await rpc.request(schedulerAddress, { echo: { payload: new TextEncoder().encode(FAILPOINT_MACHINE_THROWS) } }, { timeoutMs: 300, retries: 0 }).catch(() => undefined);
      expect(await eventually(() => /scheduler-0 restarted, pid \d+/.test(up.output()), 20_000), up.output()).toBe(true);
      expect(isGone(schedulerPid)).toBe(true);
      expect(up.output()).toMatch(/scheduler: FATAL in machine .* handling a echo message .*exiting with 70/);
      expect(up.output()).toMatch(new RegExp(`scheduler-0 \\(pid ${schedulerPid}\\) exited with code 70`));
      // kill -9 of the executor: restarted too.
      process.kill(Number(executor![1]), 'SIGKILL');
      expect(await eventually(() => /executor-0 restarted, pid \d+/.test(up.output()), 20_000), up.output()).toBe(true);
      // The restarted scheduler is at the same address, with the registry still in the KVS: calls work.
      // With the admin token `up` made in its data folder (and printed how to use).
      expect(up.output()).toContain(`export LFAAS_TOKEN=$(cat ${join(data, 'keys', 'admin.token')})`);
      const faas = await LatticeFaas.connect({ routing: [routing], schedulers: [schedulerAddress], token: readFileSync(join(data, 'keys', 'admin.token'), 'utf8').trim() });
      try {
        const double = await faas.register('double', { code: 'module.exports = (x) => 2 * x;' });
        let result: unknown;
        for (let attempt = 0; attempt < 50 && result === undefined; attempt++) {
          result = await faas.call(double, [21], { timeoutMs: 2000 }).catch(async () => {
            await new Promise((resolve) => setTimeout(resolve, 200));
            return undefined;
          });
        }
        expect(result).toBe(42);
      } finally {
        await faas.close();
      }
      pids = pidsIn(up.output());
    } finally {
      await rpc.close();
      await rpc.transport.close();
      up.child.kill('SIGTERM');
      await up.exited;
      killLeftovers(pids);
      rmSync(data, { recursive: true, force: true });
    }
  }, 90_000);
});
