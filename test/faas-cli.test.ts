/**
 * The `lfaas` function and DAG commands, run as real processes (the built CLI) against a real
 * FaaS cluster (routing, a storage node, a scheduler, two executors): deploy of a TypeScript file
 * (name from the file, limits as options, a second deploy is version 2), call (JSON and bare-word
 * arguments, a pinned version, --async, --consistency), a stateful example function deployed from
 * examples/functions/ (its increments read back with `lfaas kvs get`), dag create/call/list/delete,
 * functions list/describe/delete (a deleted version is GONE), and the typed failures: an unknown function or DAG, a user
 * error, bad --args, a missing --schedulers, each exit code 1 with its code on stderr.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForExecutors } from '../cli/index.js';
import { CLI, FaasCluster, scrapeMetrics } from './cluster.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const EXAMPLES = fileURLToPath(new URL('../examples/functions/', import.meta.url));

describe('lfaas function and DAG commands', () => {
  const cluster = new FaasCluster();
  const sources = mkdtempSync(join(tmpdir(), 'lfaas-cli-fn-'));
  let env: Record<string, string> = {};

  /** Runs `lfaas <args>` with LFAAS_ROUTING and LFAAS_SCHEDULERS set (unless `withEnv` is false). */
  const lfaas = (args: readonly string[], withEnv = true): Promise<Run> =>
    new Promise((resolve) => {
      const base = { ...process.env };
      delete base['LFAAS_ROUTING'];
      delete base['LFAAS_SCHEDULERS'];
      delete base['LFAAS_STATE'];
      // In a folder with no `.lfaas/cluster.json` above it: without the variables, no cluster is found.
      execFile(process.execPath, [CLI, ...args], { cwd: sources, env: withEnv ? { ...base, ...env } : base, timeout: 30_000 }, (error, stdout, stderr) => {
        // -1: killed at the 30 s bound (a hang), told apart from an exit code.
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : error.killed === true ? -1 : 1;
        if (code === -1) void hangReport(args, stdout, stderr).finally(() => resolve({ code, stdout, stderr }));
        else resolve({ code, stdout, stderr });
      });
    });
  /**
   * A command that hung (a rare failure, not reproduced alone): what the cluster's processes said
   * and counted, printed to the test's log for diagnosis.
   */
  async function hangReport(args: readonly string[], stdout: string, stderr: string): Promise<void> {
    // Output present means the command did its work and then did not exit.
    const lines = [`[faas-cli] lfaas ${args.join(' ')} hung for 30 s; its stdout ${JSON.stringify(stdout.slice(0, 300))}, stderr ${JSON.stringify(stderr.slice(0, 300))}; the cluster's last words:`];
    for (const [name, role] of [['scheduler', cluster.schedulers[0]!], ...cluster.executors.map((executor, i) => [`executor-${i}`, executor] as const)] as const) {
      lines.push(`--- ${name} (pid ${role.pid}) stderr, last 20 lines:`, ...role.stderr.slice(-20));
      try {
        const metrics = await scrapeMetrics(role);
        lines.push(`--- ${name} metrics:`, ...metrics.split('\n').filter((line) => /^lfaas_(scheduler|executor|wire)_\w+(\{[^}]*\})? [1-9]/.test(line)));
      } catch (error) {
        lines.push(`--- ${name} metrics: ${(error as Error).message}`);
      }
    }
    console.log(lines.join('\n'));
  }

  /** Runs a command that must succeed; its stdout. */
  const ok = async (args: readonly string[]): Promise<string> => {
    const run = await lfaas(args);
    expect(run.code, `lfaas ${args.join(' ')} (exit ${run.code}): stderr ${JSON.stringify(run.stderr)} stdout ${JSON.stringify(run.stdout.slice(0, 500))}`).toBe(0);
    return run.stdout;
  };
  const source = (file: string, text: string): string => {
    const path = join(sources, file);
    writeFileSync(path, text);
    return path;
  };

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, global: 1, schedulers: 1, executors: 2, workers: 2 });
    await waitForExecutors(cluster.routingAddresses, cluster.schedulerAddresses);
    env = { LFAAS_ROUTING: cluster.routingAddresses.join(','), LFAAS_SCHEDULERS: cluster.schedulerAddresses.join(',') };
  }, 60_000);
  afterAll(async () => {
    await cluster.stop();
    rmSync(sources, { recursive: true, force: true });
  }, 30_000);

  it('deploys a TypeScript file and calls it: JSON and bare-word arguments, versions, --async, --consistency', async () => {
    const calc = source('calc.ts', 'export default function calc(a: number, b: number): number {\n  return a + b;\n}\n');
    expect(JSON.parse(await ok(['deploy', calc, '--memory-mb', '64', '--timeout-ms', '5000']))).toEqual({ name: 'calc', version: 1 });
    // A negative number is an argument, not an option.
    const [sum, negative] = await Promise.all([ok(['call', 'calc', '3', '4']), ok(['call', 'calc', '-3', '4'])]);
    expect(JSON.parse(sum)).toBe(7);
    expect(JSON.parse(negative)).toBe(1);
    // The same name again: version 2 (multiplies); version 1 stays callable.
    source('calc.ts', 'export default function calc(a: number, b: number): number {\n  return a * b;\n}\n');
    expect(JSON.parse(await ok(['deploy', calc]))).toEqual({ name: 'calc', version: 2 });
    const calls = await Promise.all([
      ok(['call', 'calc', '3', '4']),
      ok(['call', 'calc', '3', '4', '--version', '1']),
      ok(['call', 'calc', '5', '6', '--async']),
      ok(['call', 'calc', '2', '2', '--consistency', 'repeatable-read']),
    ]);
    expect(calls.map((out) => JSON.parse(out) as unknown)).toEqual([12, 7, 30, 4]);

    // --name overrides the file's name; a bare word is a string, JSON objects arrive as objects.
    const greet = source('greeting.ts', "export default function greet(name: string, options: { shout?: boolean } = {}): string {\n  const text = `hello, ${name}`;\n  return options.shout === true ? text.toUpperCase() : text;\n}\n");
    expect(JSON.parse(await ok(['deploy', greet, '--name', 'greet']))).toEqual({ name: 'greet', version: 1 });
    const greetings = await Promise.all([ok(['call', 'greet', 'world']), ok(['call', 'greet', '"json string"', '{"shout":true}'])]);
    expect(greetings.map((out) => JSON.parse(out) as unknown)).toEqual(['hello, world', 'HELLO, JSON STRING']);

    const [json, table, one] = await Promise.all([ok(['functions', '--json']), ok(['functions']), ok(['functions', 'calc', '--json'])]);
    const list = JSON.parse(json) as Record<string, unknown>[];
    const calcInfo = list.find((info) => info['name'] === 'calc');
    expect(calcInfo).toMatchObject({ name: 'calc', latest: 2, versions: [1, 2], memoryMb: 128, timeoutMs: 60_000 });
    expect(calcInfo!['codeBytes']).toBeGreaterThan(0);
    expect(list.map((info) => info['name'])).toContain('greet');
    // The table form: a header and a row per function.
    expect(table).toMatch(/^name\s+latest\s+versions\s+memoryMb\s+timeoutMs\s+keepAlive\s+codeBytes$/m);
    expect(table).toMatch(/^calc\s+2\s+1,2\s+128\s+60000\s+fixed 900s\s+\d+$/m);
    expect(JSON.parse(one)).toMatchObject({ name: 'calc', latest: 2 });
  }, 60_000);

  it('deploy --keep-alive and --reads: recorded with the function; a bad policy or read set is refused', async () => {
    const lookup = source('lookup.ts', 'export default function lookup(x: number): number {\n  return x;\n}\n');
    await ok(['deploy', lookup, '--keep-alive', 'adaptive', '--reads', 'models/squeezenet,labels/*']);
    expect(JSON.parse(await ok(['functions', 'lookup', '--json']))).toMatchObject({ name: 'lookup', keepAlive: 'adaptive', reads: ['models/squeezenet', 'labels/*'], keepAliveMs: 15 * 60_000 });
    await ok(['deploy', lookup, '--name', 'lookup-fixed', '--keep-alive-ms', '300000']);
    expect(JSON.parse(await ok(['functions', 'lookup-fixed', '--json']))).toMatchObject({ keepAlive: 'fixed', keepAliveMs: 300_000, reads: [] });
    expect(JSON.parse(await ok(['call', 'lookup', '5']))).toBe(5);
    const badPolicy = await lfaas(['deploy', lookup, '--keep-alive', 'forever']);
    expect(badPolicy.code).not.toBe(0);
    expect(badPolicy.stderr).toMatch(/forever/);
    // A `*` anywhere but the end of a prefix: refused by the registry with a typed error.
    const badReads = await lfaas(['deploy', lookup, '--reads', 'a*b']);
    expect(badReads.code).toBe(4);
    expect(badReads.stderr).toMatch(/EXEC_BAD_VALUE: reads entry "a\*b"/);
  }, 60_000);

  it('deploys the example counter-increment (ctx.increment of a Counter lattice) and its increments land in the KVS', async () => {
    expect(JSON.parse(await ok(['deploy', join(EXAMPLES, 'counter-increment.ts')]))).toMatchObject({ name: 'counter-increment' });
    // The first increment makes the Counter: the key holds nothing before.
    const seen = await Promise.all(Array.from({ length: 4 }, () => ok(['call', 'counter-increment', 'cli-hits'])));
    for (const value of seen) expect(JSON.parse(value)).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(await ok(['kvs', 'get', 'cli-hits', '--all']))).toEqual({ key: 'cli-hits', type: 'Counter', value: 4 });
    // On a key that holds another lattice type, the platform's error comes back typed.
    await ok(['kvs', 'put', 'cli-not-a-counter', '"text"', '--ack', 'replicated']);
    const wrong = await lfaas(['call', 'counter-increment', 'cli-not-a-counter']);
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain('KVS_LATTICE_MISMATCH');
  }, 60_000);

  it('creates, calls (sync and --async), lists and deletes a DAG', async () => {
    await Promise.all([
      ok(['deploy', source('inc.ts', 'export default function inc(x: number): number {\n  return x + 1;\n}\n')]),
      ok(['deploy', source('double.ts', 'export default function double(x: number): number {\n  return 2 * x;\n}\n')]),
    ]);
    expect(JSON.parse(await ok(['dag', 'create', 'inc-double', '--functions', 'inc,double', '--edges', 'inc:double']))).toEqual({ name: 'inc-double', functions: ['inc', 'double'], edges: ['inc:double'] });
    const results = await Promise.all([
      ok(['dag', 'call', 'inc-double', '--args', '{"inc":[4]}']),
      ok(['dag', 'call', 'inc-double', '--args', '{"inc":[9]}', '--async']),
      ok(['dag', 'call', 'inc-double', '--args', '{"inc":[0]}', '--consistency', 'causal']),
    ]);
    expect(results.map((out) => JSON.parse(out) as unknown)).toEqual([10, 20, 2]);
    const [dagJson, dagTable] = await Promise.all([ok(['dag', 'list', '--json']), ok(['dag', 'list'])]);
    const dags = JSON.parse(dagJson) as Record<string, unknown>[];
    expect(dags).toContainEqual({ name: 'inc-double', functions: ['inc', 'double'], edges: ['inc:double'] });
    expect(dagTable).toMatch(/^inc-double\s+inc,double\s+inc:double$/m);

    // A cycle is refused by the scheduler with a typed error; --args must be an object of arrays.
    const [cycle, badArgs] = await Promise.all([
      lfaas(['dag', 'create', 'loop', '--functions', 'inc,double', '--edges', 'inc:double,double:inc']),
      lfaas(['dag', 'call', 'inc-double', '--args', '[4]']),
    ]);
    // Refused by the cluster: 4; a bad argument found by the command itself: usage, 2.
    expect(cycle.code).toBe(4);
    expect(cycle.stderr).toMatch(/^lfaas: [A-Z_]+: /m);
    expect(badArgs.code).toBe(2);
    expect(badArgs.stderr).toContain('--args is a JSON object of argument arrays');

    await ok(['dag', 'delete', 'inc-double']);
    expect(await ok(['dag', 'list', '--json'])).not.toContain('"inc-double"');
    const gone = await lfaas(['dag', 'call', 'inc-double', '--args', '{"inc":[4]}']);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain('SCHED_DAG_NOT_FOUND');
  }, 60_000);

  it('deletes one version (its calls: GONE), then every version (calls: SCHED_FUNCTION_NOT_FOUND); a new deploy takes the next number', async () => {
    const path = source('temp.ts', 'export default function temp(): string {\n  return "v1";\n}\n');
    await ok(['deploy', path]);
    source('temp.ts', 'export default function temp(): string {\n  return "v2";\n}\n');
    await ok(['deploy', path]);
    // Addresses as options instead of the environment (the subcommand takes its own).
    const addresses = ['--routing', env['LFAAS_ROUTING']!, '--schedulers', env['LFAAS_SCHEDULERS']!];
    const deleteOne = await lfaas(['functions', 'delete', 'temp', '--version', '1', ...addresses], false);
    expect(deleteOne.code, deleteOne.stderr).toBe(0);
    expect(JSON.parse(await ok(['functions', 'temp', '--json']))).toMatchObject({ name: 'temp', latest: 2, versions: [2] });
    expect(JSON.parse(await ok(['call', 'temp']))).toBe('v2');
    // A deleted version existed: GONE, not SCHED_FUNCTION_NOT_FOUND.
    const oldVersion = await lfaas(['call', 'temp', '--version', '1']);
    expect(oldVersion.code).toBe(3);
    expect(oldVersion.stderr).toMatch(/^lfaas: GONE: version 1 of temp was deleted/m);

    await ok(['functions', 'delete', 'temp']);
    const described = await lfaas(['functions', 'temp']);
    expect(described.code).toBe(3);
    expect(described.stderr).toContain('SCHED_FUNCTION_NOT_FOUND');
    expect(await ok(['functions', '--json'])).not.toContain('"temp"');
    const call = await lfaas(['call', 'temp']);
    expect(call.code).toBe(3);
    expect(call.stderr).toMatch(/^lfaas: SCHED_FUNCTION_NOT_FOUND: /m);
    const again = await lfaas(['functions', 'delete', 'temp']);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('SCHED_FUNCTION_NOT_FOUND');

    // Deployed again: the next number, not a deleted one (the executors ran version 2 and may still
    // hold its code), and the new code runs.
    source('temp.ts', 'export default function temp(): string {\n  return "v3";\n}\n');
    expect(JSON.parse(await ok(['deploy', path]))).toEqual({ name: 'temp', version: 3 });
    const runs = await Promise.all(Array.from({ length: 4 }, () => ok(['call', 'temp'])));
    expect(runs.map((out) => JSON.parse(out) as unknown)).toEqual(['v3', 'v3', 'v3', 'v3']);
  }, 60_000);

  it('fails with its exit code class (cli/exit-codes.ts) and a typed message: unknown function, user error, bad file, no cluster; a routing node alone finds the schedulers', async () => {
    const [unknown, noFile, fs, noSchedulers, noRouting] = await Promise.all([
      lfaas(['call', 'no-such-function', '1']),
      lfaas(['deploy', join(sources, 'absent.ts')]),
      lfaas(['deploy', source('reads-files.ts', "import { readFileSync } from 'node:fs';\nexport default function reads(): string {\n  return readFileSync('/etc/hostname', 'utf8');\n}\n")]),
      lfaas(['call', 'calc', '1', '2', '--routing', env['LFAAS_ROUTING']!], false),
      lfaas(['functions'], false),
    ]);
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^lfaas: SCHED_FUNCTION_NOT_FOUND: /m);

    await ok(['deploy', source('boom.ts', 'export default function boom(): never {\n  throw new RangeError("it broke");\n}\n')]);
    const boom = await lfaas(['call', 'boom']);
    expect(boom.code).toBe(6);
    expect(boom.stderr).toMatch(/^lfaas: EXEC_USER_ERROR: RangeError: it broke/m);

    expect(noFile.code).toBe(4);
    expect(noFile.stderr).toContain('EXEC_BAD_VALUE');
    // A function may not import Node built-ins: refused when it is bundled.
    expect(fs.code).toBe(4);
    expect(fs.stderr).toContain('node:fs');

    // A routing node alone is enough: the schedulers are discovered from it (client/discovery.ts).
    expect(noSchedulers.code, noSchedulers.stderr).toBe(0);
    expect(JSON.parse(noSchedulers.stdout)).toBe(2);
    // No routing node, no LFAAS_* and no state file of `lfaas up`: no cluster, exit 5, at once.
    expect(noRouting.code).toBe(5);
    expect(noRouting.stderr).toContain('is `lfaas up` running?');
  }, 60_000);
});
