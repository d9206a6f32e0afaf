/**
 * The CLI finds its cluster: `lfaas up` on fixed ports writes `.lfaas/cluster.json` once every
 * role answers; commands with no address and no `LFAAS_*` read it (from the project folder and
 * below); `--json` output parses; each exit code class comes from a real case; after `up` stops a
 * command fails fast with "no cluster"; `up` restarted on the same folder is on the same ports
 * and serves right after ready, and so does one on other ports; a taken port fails `up` at once,
 * naming it.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClusterFile } from '../client/index.js';
import type { ClusterFile } from '../client/index.js';
import { reservePortRange } from '../cli/index.js';
import type { PortRange } from '../cli/index.js';
import { CLI, eventually } from './cluster.js';
import { isGone, killLeftovers, pidsIn, startUp } from './up-process.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment without any LFAAS_* variable: commands must find the cluster by themselves. */
function bareEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('LFAAS_')) env[name] = value;
  return { ...env, ...extra };
}

function lfaas(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = bareEnv()): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const json = (run: Run): unknown => {
  try {
    return JSON.parse(run.stdout) as unknown;
  } catch {
    throw new Error(`not one JSON document on stdout (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
};

async function readyOf(up: ReturnType<typeof startUp>, timeoutMs: number): Promise<void> {
  await eventually(() => up.output().includes('cluster ready') || up.child.exitCode !== null, timeoutMs);
  expect(up.output(), 'lfaas up got ready').toContain('cluster ready');
}

describe('the CLI finds its cluster', () => {
  const project = mkdtempSync(join(tmpdir(), 'lfaas-cli-cluster-'));
  const data = join(project, 'data');
  const sub = join(project, 'deeper', 'folder');
  const stateFile = join(project, '.lfaas', 'cluster.json');
  let up: ReturnType<typeof startUp>;
  let pids: number[] = [];
  let state: ClusterFile;
  /** Port ranges this file reserved itself (released at the end). */
  const ranges: PortRange[] = [];

  beforeAll(async () => {
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(project, 'thrower.js'), "module.exports = function thrower() { throw new Error('boom from the function'); };\n");
    up = startUp(['--data', data], {}, { cwd: project });
    await readyOf(up, 120_000);
    pids = pidsIn(up.output());
    state = readClusterFile(stateFile);
  }, 130_000);

  afterAll(async () => {
    if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGTERM');
    await Promise.race([up.exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    killLeftovers([...pids, ...pidsIn(up.output())]);
    for (const range of ranges) range.release();
    rmSync(project, { recursive: true, force: true });
  }, 30_000);

  it('up writes the state file (0600) on its fixed ports: addresses with keys, the ingress, the token, its pid', () => {
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    expect(state.pid).toBe(up.child.pid);
    expect(state.routing).toEqual([expect.stringMatching(new RegExp(`^tcp://127\\.0\\.0\\.1:${up.basePort}#[A-Za-z0-9_-]{43}$`))]);
    expect(state.schedulers).toEqual([expect.stringMatching(new RegExp(`^tcp://127\\.0\\.0\\.1:${up.basePort + 100}#`))]);
    expect(state.token).toBe(readFileSync(join(data, 'keys', 'admin.token'), 'utf8').trim());
    expect(state.keys).toBe(join(data, 'keys'));
    if (state.ingress !== undefined) expect(state.ingress).toBe(`http://127.0.0.1:${up.basePort - 20}`);
    expect(up.output()).toContain(`tcp://127.0.0.1:${up.basePort + 200}#`);
    expect(up.output()).toContain(`control tcp://127.0.0.1:${up.basePort + 300}#`);
  });

  it('commands with no address and no LFAAS_* find it, from the project folder and below; --json parses for each family', async () => {
    const deployed = await lfaas(['deploy', join(process.cwd(), 'examples', 'functions', 'square.ts'), '--json'], project);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(json(deployed)).toEqual({ name: 'square', version: 1 });
    const called = await lfaas(['call', 'square', '7', '--json'], sub);
    expect(called.code, called.stderr).toBe(0);
    expect(json(called)).toBe(49);
    const functions = await lfaas(['functions', '--json'], sub);
    expect(json(functions)).toEqual([expect.objectContaining({ name: 'square', latest: 1 })]);
    expect(json(await lfaas(['functions', 'square', '--json'], sub))).toMatchObject({ name: 'square', versions: [1] });
    expect(json(await lfaas(['dag', 'list', '--json'], sub))).toEqual([]);
    expect(json(await lfaas(['kvs', 'put', 'greeting', 'hello', '--json'], sub))).toMatchObject({ key: 'greeting', ok: true });
    expect(json(await lfaas(['kvs', 'get', 'greeting', '--json'], sub))).toMatchObject({ key: 'greeting', value: 'hello' });
    const stat = json(await lfaas(['kvs', 'stat', '--json'], sub)) as { nodes: unknown[] };
    expect(stat.nodes).toHaveLength(3);
    expect(json(await lfaas(['events', '--json'], sub))).toEqual([]);
    const token = json(await lfaas(['token', 'create', '--keys', state.keys, '--owner', 'alice', '--rights', 'call', '--json'], sub)) as { token: string; owner: string };
    expect(token.owner).toBe('alice');
    expect(token.token).toMatch(/^lfaas1\./);
    const keysFolder = join(project, 'other-keys');
    expect(json(await lfaas(['keys', 'init', keysFolder, '--json'], sub))).toMatchObject({ folder: keysFolder });
    // Explicit flags still win over the state file.
    const flagged = await lfaas(['call', 'square', '3', '--routing', state.routing[0]!, '--schedulers', state.schedulers[0]!], join(tmpdir()), bareEnv({ LFAAS_TOKEN: state.token }));
    expect(flagged.stdout.trim(), flagged.stderr).toBe('9');
  }, 120_000);

  it('each exit code class comes from a real case: 2 usage, 3 not found, 4 refused, 5 unavailable, 6 function error', async () => {
    const usage = await lfaas(['call', '--json'], project);
    expect(usage.code).toBe(2);
    expect(json(usage)).toEqual({ error: { code: 'USAGE', message: expect.stringContaining("missing required argument 'name'"), retryable: false } });
    expect((await lfaas(['call', 'square', '--no-such-flag'], project)).code).toBe(2);
    expect((await lfaas(['dag', 'create', 'd', '--functions', 'square', '--edges', 'nonsense'], project)).code).toBe(2);

    const notFound = await lfaas(['call', 'nope', '--json'], project);
    expect(notFound.code).toBe(3);
    expect(json(notFound)).toEqual({ error: { code: 'SCHED_FUNCTION_NOT_FOUND', message: expect.any(String), retryable: false } });
    const noKey = await lfaas(['kvs', 'get', 'no-such-key'], project);
    expect(noKey.code).toBe(3);
    expect(noKey.stderr).toContain('KVS_KEY_NOT_FOUND');

    const refused = await lfaas(['call', 'square', '2', '--token', 'not-a-token', '--json'], project);
    expect(refused.code).toBe(4);
    expect(json(refused)).toMatchObject({ error: { code: 'UNAUTHORISED' } });

    const deployed = await lfaas(['deploy', join(project, 'thrower.js')], project);
    expect(deployed.code, deployed.stderr).toBe(0);
    const threw = await lfaas(['call', 'thrower', '--json'], project);
    expect(threw.code).toBe(6);
    expect(json(threw)).toMatchObject({ error: { code: 'EXEC_USER_ERROR', message: expect.stringContaining('boom from the function') } });

    const stale = join(project, 'stale.json');
    writeFileSync(stale, JSON.stringify({ ...state, pid: 2 ** 22 + 12_345 }));
    const unavailable = await lfaas(['call', 'square', '2', '--json'], tmpdir(), bareEnv({ LFAAS_STATE: stale }));
    expect(unavailable.code).toBe(5);
    expect(json(unavailable)).toMatchObject({ error: { code: 'TRANSPORT_NO_CLUSTER', message: expect.stringContaining('is stale'), retryable: false } });
    // 1 (internal) is a bug by definition: no real case on purpose; cli/exit-codes.test.ts checks its mapping.
  }, 120_000);

  it('a second up on taken ports fails at once, naming the port and its holder; a second up in the same folder is refused', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'lfaas-cli-taken-'));
    try {
      const second = await lfaas(['up', '--data', join(elsewhere, 'data'), '--base-port', String(up.basePort)], elsewhere);
      expect(second.code).toBe(2);
      expect(second.stderr).toContain(`port ${up.basePort} (for routing) is taken`);
      expect(second.stderr).toMatch(/by pid \d+ \(.*routing/);
      expect(existsSync(join(elsewhere, '.lfaas', 'cluster.json'))).toBe(false);
      const same = await lfaas(['up', '--data', data, '--base-port', String(up.basePort + 1000)], project);
      expect(same.code).toBe(2);
      expect(same.stderr).toContain(`a cluster from this folder is running already: lfaas up pid ${up.child.pid}`);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  }, 60_000);

  it('after up stops: the state file is gone and commands fail fast (no cluster, exit 5); restarted on the same folder it is on the same ports and serves at once', async () => {
    up.child.kill('SIGTERM');
    await up.exited;
    expect(existsSync(stateFile)).toBe(false);
    const none = await lfaas(['call', 'square', '2'], project);
    expect(none.code).toBe(5);
    expect(none.stderr).toContain('is `lfaas up` running?');
    // With the addresses exported from before: a real request finds nobody, within the bound.
    const exported = bareEnv({ LFAAS_ROUTING: state.routing[0]!, LFAAS_SCHEDULERS: state.schedulers[0]!, LFAAS_TOKEN: state.token });
    const stale = await lfaas(['call', 'square', '2', '--json'], tmpdir(), exported);
    expect(stale.code).toBe(5);
    expect(json(stale)).toMatchObject({ error: { code: 'TRANSPORT_NO_CLUSTER', message: expect.stringContaining(`no cluster at ${state.routing[0]!}: is \`lfaas up\` running?`) } });
    // TRANSPORT_NO_CLUSTER comes only from the first contact's bounded probe (2 s), never from a
    // call's 60 s budget running out (TRANSPORT_TIMEOUT): the code is the bound, no clock is read.

    // The same folder again: same ports, same keys, so the same addresses; commands right after ready.
    up = startUp(['--data', data, '--base-port', String(up.basePort)], {}, { cwd: project });
    await readyOf(up, 120_000);
    pids = pidsIn(up.output());
    const again = readClusterFile(stateFile);
    expect(again.routing).toEqual(state.routing);
    expect(again.schedulers).toEqual(state.schedulers);
    expect(again.pid).toBe(up.child.pid);
    const [nope, deploy, square] = [await lfaas(['call', 'nope'], project), await lfaas(['deploy', join(project, 'thrower.js'), '--name', 'thrower2'], project), await lfaas(['call', 'square', '5'], project)];
    expect({ code: nope.code, stderr: nope.stderr }).toEqual({ code: 3, stderr: expect.stringContaining('SCHED_FUNCTION_NOT_FOUND') });
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(square.stdout.trim(), square.stderr).toBe('25');
    // The exported variables of the first run are still right.
    expect((await lfaas(['call', 'square', '6'], tmpdir(), exported)).stdout.trim()).toBe('36');

    // kill -9 of up: its file stays behind, and says it is stale.
    process.kill(up.child.pid!, 'SIGKILL');
    await up.exited;
    const dead = await lfaas(['call', 'square', '2'], project);
    expect(dead.code).toBe(5);
    expect(dead.stderr).toContain(`is stale (lfaas up, pid ${up.child.pid}, is not running)`);
  }, 200_000);

  it('up on the same folder but other ports (its storage nodes\' saved ring names addresses nobody holds): ready, and the first commands answer at once', async () => {
    // The children of the up killed above leave within seconds (their stdin closed).
    const before = pidsIn(up.output());
    expect(await eventually(() => before.every(isGone), 15_000)).toBe(true);
    const oldPort = up.basePort;
    // Other ports for sure: the old range is free again, so a random pick could return it; held while picking.
    const held = [reservePortRange()];
    while (held.at(-1)!.base === oldPort && held.length < 5) held.push(reservePortRange());
    const range = held.pop()!;
    for (const other of held) other.release();
    ranges.push(range);
    up = startUp(['--data', data, '--base-port', String(range.base)], {}, { cwd: project });
    expect(up.basePort).not.toBe(oldPort);
    await readyOf(up, 120_000);
    pids = pidsIn(up.output());
    expect(up.output()).toContain('(removed the stale');
    // Right after ready: a miss (the registry has no "nope") is answered, not a shard's TRANSPORT_TIMEOUT.
    const nope = await lfaas(['call', 'nope'], project);
    expect({ code: nope.code, stderr: nope.stderr }).toEqual({ code: 3, stderr: expect.stringContaining('SCHED_FUNCTION_NOT_FOUND') });
    const deploy = await lfaas(['deploy', join(project, 'thrower.js'), '--name', 'thrower3'], project);
    expect(deploy.code, deploy.stderr).toBe(0);
    const square = await lfaas(['call', 'square', '4'], project);
    expect(square.stdout.trim(), square.stderr).toBe('16');
  }, 200_000);
});
