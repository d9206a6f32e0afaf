/**
 * Function logs and the invocations listing over real processes (a routing node, a storage node,
 * a scheduler, two executors, and the built CLI): what a function logs with console.* and ctx.log
 * is read back with its call id by `lfaas logs` and `faas.logs()`, `--follow` prints a line logged
 * after it started, hostile text is bounded and escaped, an owner sees neither another owner's
 * logs nor its calls, and `lfaas invocations` shows a call running, then succeeded, and a failed
 * one with its error code. No assertion on timing: every wait is bounded, and only outcomes count.
 */
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionLogEntry, InvocationEntry, LatticeFaas } from '../client/index.js';
import { readTokenKeys } from '../cli/index.js';
import { ErrorCode, HybridClock, LfaasError, Lww } from '../lattices/index.js';
import { createToken } from '../protocol/index.js';
import type { Right } from '../protocol/index.js';
import { CLI, FaasCluster, eventually, testKeysFolder } from './cluster.js';

const ALL: Right[] = ['deploy', 'call', 'read', 'write'];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A function that says its word on console.log and ctx.log, and returns it. */
const TALK = `module.exports = async (word, ctx) => { console.log('console says', word); ctx.log.info({ word, n: 7 }, 'ctx says ' + word); return word; };`;
/** Logs huge text with escape sequences, control characters and a bidirectional override. */
const HOSTILE = `module.exports = async () => { console.log('HOSTILE' + '\\u001b[2J\\u001b]0;owned\\u0007' + '\\u202e' + 'x'.repeat(200000)); console.log('line1\\nline2\\r\\u0000end'); return 'ok'; };`;
/** Waits until the key alice/go holds a value (bounded), then returns it. */
const WAIT = `module.exports = async (key, ctx) => { for (let i = 0; i < 600; i++) { const v = await ctx.get(key); if (v !== undefined && v !== null) return 'released'; await new Promise((r) => setTimeout(r, 50)); } return 'gave up'; };`;
const FAIL = `module.exports = async () => { console.error('about to fail'); throw new Error('boom on purpose'); };`;

describe('function logs and invocations', () => {
  const cluster = new FaasCluster();
  const clock = new HybridClock('logs-test', () => Date.now());
  const clients: LatticeFaas[] = [];
  let admin: LatticeFaas;
  let alice: LatticeFaas;
  let bob: LatticeFaas;
  let aliceToken = '';
  let bobToken = '';

  const token = (owner: string): string => createToken(readTokenKeys(testKeysFolder(), true), { owner, rights: ALL, ttlSeconds: 600 });

  /** `lfaas <args>` presenting `presented`, with the cluster's addresses in the environment. */
  const lfaas = (args: readonly string[], presented: string): Promise<Run> =>
    new Promise((resolve) => {
      const env = { ...process.env, LFAAS_ROUTING: cluster.routingAddresses.join(','), LFAAS_SCHEDULERS: cluster.schedulerAddresses.join(','), LFAAS_TOKEN: presented };
      execFile(process.execPath, [CLI, ...args], { env, timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      });
    });

  async function collect(records: AsyncIterable<FunctionLogEntry>): Promise<FunctionLogEntry[]> {
    const out: FunctionLogEntry[] = [];
    for await (const record of records) out.push(record);
    return out;
  }

  async function rejection(promise: Promise<unknown>): Promise<LfaasError> {
    const outcome = await promise.then(
      (value) => ({ value }),
      (error: unknown) => error,
    );
    expect(outcome, `accepted: ${JSON.stringify(outcome)}`).toBeInstanceOf(LfaasError);
    return outcome as LfaasError;
  }

  /** Polls alice's logs (bounded) until `found` holds of them. */
  async function aliceLogsUntil(found: (records: FunctionLogEntry[]) => boolean, options: { function?: string; callId?: string } = {}): Promise<FunctionLogEntry[]> {
    let last: FunctionLogEntry[] = [];
    await eventually(async () => found((last = await collect(alice.logs(options)))), 15_000);
    return last;
  }

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, global: 1, schedulers: 1, executors: 2, workers: 2 });
    admin = await cluster.connect();
    aliceToken = token('alice');
    bobToken = token('bob');
    alice = await cluster.connect(aliceToken);
    bob = await cluster.connect(bobToken);
    clients.push(alice, bob);
    await alice.register('alice/talk', { code: TALK }, { timeoutMs: 10_000 });
    await alice.register('alice/hostile', { code: HOSTILE }, { timeoutMs: 10_000 });
    await alice.register('alice/wait', { code: WAIT }, { timeoutMs: 60_000 });
    await alice.register('alice/fail', { code: FAIL }, { timeoutMs: 10_000 });
    await bob.register('bob/talk', { code: TALK }, { timeoutMs: 10_000 });
    // The first calls wait for an executor's first heartbeat (bounded).
    let served = false;
    for (let attempt = 0; attempt < 100 && !served; attempt++) {
      try {
        served = (await alice.call('alice/talk', ['warm-up'], { timeoutMs: 5000 })) === 'warm-up';
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(served).toBe(true);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await admin?.close();
    await cluster.stop();
  }, 60_000);

  it('the SDK reads what a function logged with console.log and ctx.log, with its call id', async () => {
    const future = await alice.callAsync('alice/talk', ['hello']);
    expect(await future.result({ timeoutMs: 20_000 })).toBe('hello');
    const records = await aliceLogsUntil((found) => found.filter((record) => record.callId === future.callId).length >= 2, { function: 'alice/talk', callId: future.callId });
    const texts = records.map((record) => record.text);
    expect(texts).toContain('console says hello');
    expect(texts).toContain('ctx says hello');
    const fromCtx = records.find((record) => record.text === 'ctx says hello')!;
    expect(fromCtx.fields).toEqual({ word: 'hello', n: 7 });
    expect(fromCtx.function).toBe('alice/talk');
    expect(fromCtx.version).toBe(1);
    expect(fromCtx.level).toBe('info');
    expect(cluster.executors.map((executor) => String(executor.ready['address']))).toContain(fromCtx.executor);
    for (const record of records) expect(record.callId).toBe(future.callId);
    // In time order.
    const times = (await collect(alice.logs())).map((record) => record.timeMs);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  }, 60_000);

  it('`lfaas logs` prints the lines with the call id, as text and as one JSON document', async () => {
    const future = await alice.callAsync('alice/talk', ['from-cli']);
    await future.result({ timeoutMs: 20_000 });
    await aliceLogsUntil((found) => found.some((record) => record.text === 'ctx says from-cli'));
    const text = await lfaas(['logs', 'alice/talk', '--since', '10m'], aliceToken);
    expect(text.code, text.stderr).toBe(0);
    const line = text.stdout.split('\n').find((candidate) => candidate.includes('ctx says from-cli'));
    expect(line, text.stdout).toBeDefined();
    expect(line).toContain(future.callId);
    expect(line).toContain('alice/talk@1');
    const json = await lfaas(['logs', 'alice/talk', '--call', future.callId, '--json'], aliceToken);
    expect(json.code, json.stderr).toBe(0);
    const records = JSON.parse(json.stdout) as FunctionLogEntry[];
    // An async call runs at least once (a loaded executor's run may be dispatched again): each line once per run.
    expect([...new Set(records.map((record) => record.text))].sort()).toEqual(['console says from-cli', 'ctx says from-cli']);
    expect(records.every((record) => record.callId === future.callId)).toBe(true);
  }, 60_000);

  it('`lfaas logs --follow` prints a line logged after it started, until it is stopped', async () => {
    await alice.call('alice/talk', ['before-follow']);
    await aliceLogsUntil((found) => found.some((record) => record.text === 'ctx says before-follow'));
    const env = { ...process.env, LFAAS_ROUTING: cluster.routingAddresses.join(','), LFAAS_SCHEDULERS: cluster.schedulerAddresses.join(','), LFAAS_TOKEN: aliceToken };
    const child = spawn(process.execPath, [CLI, 'logs', 'alice/talk', '--follow', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const errors: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
    createInterface({ input: child.stderr }).on('line', (line) => errors.push(line));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // It has read once: the earlier record is there.
      expect(await eventually(() => lines.some((line) => line.includes('ctx says before-follow')), 20_000), errors.join('\n')).toBe(true);
      await alice.call('alice/talk', ['after-follow']);
      expect(await eventually(() => lines.some((line) => line.includes('ctx says after-follow')), 20_000), errors.join('\n')).toBe(true);
      // One JSON object a line.
      for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('hostile log text is bounded and escaped', async () => {
    expect(await alice.call('alice/hostile', [])).toBe('ok');
    const records = await aliceLogsUntil((found) => found.filter((record) => record.function === 'alice/hostile').length >= 2, { function: 'alice/hostile' });
    const huge = records.find((record) => record.text.startsWith('HOSTILE'))!;
    // Kept bounded (the executor cuts text at 4,096 characters and says how long it was).
    expect(huge.text.length).toBeLessThan(5000);
    expect(huge.text).toMatch(/\(\d+ characters\)$/);
    const text = await lfaas(['logs', 'alice/hostile'], aliceToken);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('HOSTILE\\x1b[2J\\x1b]0;owned\\x07\\u202e');
    expect(text.stdout).toContain('line1\\nline2\\r\\x00end');
    // eslint-disable-next-line no-control-regex
    expect(text.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    const lines = text.stdout.split('\n').filter((line) => line.length > 0);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.length).toBeLessThan(5000);
  }, 60_000);

  it('an owner reads neither another owner\'s logs nor its calls; the admin reads all', async () => {
    await bob.call('bob/talk', ['bob-word']);
    await aliceLogsUntil((found) => found.some((record) => record.text === 'ctx says hello'));
    let bobRecords: FunctionLogEntry[] = [];
    await eventually(async () => (bobRecords = await collect(bob.logs())).some((record) => record.text === 'ctx says bob-word'), 15_000);
    expect(bobRecords.length).toBeGreaterThan(0);
    expect(bobRecords.every((record) => record.function.startsWith('bob/'))).toBe(true);
    const aliceRecords = await collect(alice.logs());
    expect(aliceRecords.every((record) => record.function.startsWith('alice/'))).toBe(true);
    expect(aliceRecords.some((record) => record.text.includes('bob-word'))).toBe(false);
    expect((await rejection(collect(bob.logs({ function: 'alice/talk' })))).code).toBe(ErrorCode.UNAUTHORISED);
    expect((await rejection(collect(bob.logs({ function: 'alice/' })))).code).toBe(ErrorCode.UNAUTHORISED);
    expect((await rejection(collect(bob.logs({ function: '' })))).code).toBe(ErrorCode.UNAUTHORISED);
    expect((await rejection(bob.invocations({ function: 'alice/' }))).code).toBe(ErrorCode.UNAUTHORISED);
    const bobCalls = await bob.invocations();
    expect(bobCalls.some((entry) => entry.name === 'bob/talk')).toBe(true);
    expect(bobCalls.every((entry) => entry.name.startsWith('bob/') || entry.callId.startsWith('bob/'))).toBe(true);
    const refused = await lfaas(['logs', 'alice/talk'], bobToken);
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toContain('UNAUTHORISED');
    const everything = await collect(admin.logs());
    expect(everything.some((record) => record.function === 'alice/talk')).toBe(true);
    expect(everything.some((record) => record.function === 'bob/talk')).toBe(true);
  }, 60_000);

  it('`lfaas invocations` shows a call running, then succeeded, and a failed one with its error code', async () => {
    const key = `alice/go-${Date.now()}`;
    const call = alice.call('alice/wait', [key], { timeoutMs: 60_000 });
    let running: InvocationEntry | undefined;
    let listed: Run | undefined;
    await eventually(async () => {
      listed = await lfaas(['invocations', '--running', '--json'], aliceToken);
      if (listed.code !== 0) return false;
      running = (JSON.parse(listed.stdout) as InvocationEntry[]).find((entry) => entry.name === 'alice/wait' && entry.state === 'running');
      return running !== undefined;
    }, 20_000);
    expect(running, `${listed?.stdout} ${listed?.stderr}`).toBeDefined();
    expect(cluster.executors.map((executor) => String(executor.ready['address']))).toContain(running!.node);
    await alice.kvs.put(key, Lww.write(clock, 'go'), { ack: 'replicated' });
    expect(await call).toBe('released');
    let after: InvocationEntry | undefined;
    await eventually(async () => {
      after = (await alice.invocations({ function: 'alice/wait' })).find((entry) => entry.callId === running!.callId);
      return after?.state === 'succeeded';
    }, 15_000);
    expect(after?.state).toBe('succeeded');

    const failed = await rejection(alice.call('alice/fail', []));
    expect(failed.code).toBe(ErrorCode.EXEC_USER_ERROR);
    const table = await lfaas(['invocations', '--function', 'alice/fail'], aliceToken);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain('failed EXEC_USER_ERROR');
    const entries = await alice.invocations({ function: 'alice/fail' });
    expect(entries[0]?.state).toBe('failed');
    expect(entries[0]?.error?.code).toBe(ErrorCode.EXEC_USER_ERROR);
    // Its console.error line is there too, at level error.
    const records = await aliceLogsUntil((found) => found.some((record) => record.text === 'about to fail'), { function: 'alice/fail' });
    expect(records.find((record) => record.text === 'about to fail')?.level).toBe('error');
  }, 90_000);
});
