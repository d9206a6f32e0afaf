/**
 * Real processes for integration tests: routing and storage nodes started from the built CLI
 * (`dist/cli/main.js`) on 127.0.0.1 with ephemeral ports and a temporary data folder, stopped by
 * pid (SIGTERM, then SIGKILL) and the folder removed.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LatticeFaas } from '../client/index.js';
import { ADMIN_TOKEN_FILE, freePorts, keysInit, startRole, stopChildren, waitForRing } from '../cli/index.js';
import { keyText, readKeyPair } from '../protocol/index.js';

export const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

export interface RoleProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly ready: Record<string, unknown>;
  /** Lines the process wrote to stderr so far. */
  readonly stderr: string[];
}

let testKeys: string | undefined;

/**
 * The keys folder role processes of this test file share (made on first use, removed at exit):
 * roles are secure by default and need one.
 */
export function testKeysFolder(): string {
  if (testKeys === undefined) {
    const folder = mkdtempSync(join(tmpdir(), 'lfaas-keys-'));
    testKeys = join(folder, 'keys');
    keysInit(testKeys);
    // This test file's clients (the SDK, and CLI commands it starts) present the admin token.
    process.env['LFAAS_TOKEN'] = readFileSync(join(testKeys, ADMIN_TOKEN_FILE), 'utf8').trim();
    process.once('exit', () => rmSync(folder, { recursive: true, force: true }));
  }
  return testKeys;
}

/** The admin token of the test file's keys folder (what its clients present: LFAAS_TOKEN). */
export function adminToken(): string {
  testKeysFolder();
  return process.env['LFAAS_TOKEN']!;
}

const ROLE_COMMANDS = new Set(['routing', 'scheduler', 'executor', 'monitor']);

/** Whether `args` start a role process (a storage node is `kvs` with an `--id`). */
function startsRole(args: readonly string[]): boolean {
  return ROLE_COMMANDS.has(args[0] ?? '') || (args[0] === 'kvs' && args.includes('--id'));
}

/**
 * Starts `lfaas <args>` and resolves on its `ready <json>` line (15 s at most). A role gets
 * `--keys` (the test file's keys folder) unless its args say `--keys` or `--insecure`.
 */
export async function startProcess(args: readonly string[]): Promise<RoleProcess> {
  if (startsRole(args) && !args.includes('--keys') && !args.includes('--insecure')) args = [args[0]!, '--keys', testKeysFolder(), ...args.slice(1)];
  const stderr: string[] = [];
  const { child, ready } = await startRole(args, `lfaas ${args.join(' ')}`, { stderr, readyTimeoutMs: 30_000 });
  return { child, pid: child.pid!, ready, stderr };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a process by pid and waits for it to exit (SIGKILL after 3 s). */
export async function stopProcess(role: RoleProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopChildren([role.child], signal);
}

/** A routing node and storage nodes in a temporary data folder. */
export class TestCluster {
  readonly data = mkdtempSync(join(tmpdir(), 'lfaas-test-'));
  routing: RoleProcess | undefined;
  readonly nodes = new Map<string, RoleProcess>();

  get routingAddress(): string {
    return String(this.routing!.ready['address']);
  }

  async startRouting(options: { global?: number; failureTimeoutMs?: number } = {}): Promise<void> {
    this.routing = await startProcess(['routing', '--global', String(options.global ?? 2), '--failure-timeout-ms', String(options.failureTimeoutMs ?? 1000)]);
    this.routingAddresses = [this.routingAddress];
  }

  /** Several routing nodes that know each other (on free ports chosen first). */
  async startRoutingGroup(count: number, options: { global?: number; failureTimeoutMs?: number } = {}): Promise<RoleProcess[]> {
    const ports = await freePorts(count);
    // Every routing node of the test cluster has the routing key, so their addresses are known before they start.
    const key = keyText(readKeyPair(testKeysFolder(), 'routing').publicKey);
    const addresses = ports.map((port) => `tcp://127.0.0.1:${port}#${key}`);
    const started = await Promise.all(
      ports.map((port, i) =>
        startProcess(['routing', '--port', String(port), '--peers', addresses.filter((_, j) => j !== i).join(','), '--global', String(options.global ?? 2), '--failure-timeout-ms', String(options.failureTimeoutMs ?? 1000)]),
      ),
    );
    this.routing = started[0];
    this.extraRouting.push(...started.slice(1));
    this.routingAddresses = addresses;
    return started;
  }

  /** Every routing node's address (storage nodes are given all of them). */
  routingAddresses: string[] = [];
  private readonly extraRouting: RoleProcess[] = [];

  /** A storage node; `threads` puts each shard in its own worker thread. */
  async startNode(id: string, shards = 1, threads: 'on' | 'off' = 'off', extra: readonly string[] = []): Promise<RoleProcess> {
    const node = await startProcess(['kvs', '--id', id, '--routing', this.routingAddresses.join(','), '--shards', String(shards), '--data', this.data, '--metrics-port', '0', '--threads', threads, ...extra]);
    this.nodes.set(id, node);
    return node;
  }

  /** Waits (bounded) until the routing ring lists every storage node started, so a test does not race the joins. */
  async waitForRing(timeoutMs = 10_000): Promise<void> {
    await waitForRing(this.routingAddresses, [...this.nodes.values()].flatMap((node) => node.ready['shards'] as string[]), timeoutMs);
  }

  shardsOf(id: string): string[] {
    return this.nodes.get(id)!.ready['shards'] as string[];
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => stopProcess(node)));
    if (this.routing !== undefined) await stopProcess(this.routing);
    await Promise.all(this.extraRouting.map((routing) => stopProcess(routing)));
    rmSync(this.data, { recursive: true, force: true });
  }
}

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes; returns whether it held. */
/**
 * Registers `name` (a function answering "pong") and waits, bounded (15 s), until a call of it is
 * served: the scheduler has heard an executor's heartbeat. Throws with the last failure if none is.
 */
export async function untilServing(faas: LatticeFaas, name = 'ping'): Promise<void> {
  const ping = await faas.register(name, { code: 'module.exports = () => "pong";' }, { timeoutMs: 5000 });
  let last: unknown;
  const served = await eventually(async () => {
    try {
      return (last = await faas.call(ping, [], { timeoutMs: 3000 })) === 'pong';
    } catch (error) {
      last = error;
      return false;
    }
  }, 15_000);
  if (!served) throw new Error(`the scheduler never placed a call: ${String(last)}`);
}

export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10_000 && Date.now() < deadline; attempt++) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

/** The Prometheus text a process serves on its `metricsPort` (from its ready line), over http on 127.0.0.1. */
export async function scrapeMetrics(role: RoleProcess): Promise<string> {
  const port = role.ready['metricsPort'];
  if (typeof port !== 'number') throw new Error(`process ${role.pid} serves no metrics (ready ${JSON.stringify(role.ready)})`);
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`metrics of process ${role.pid}: HTTP ${response.status}: ${text}`);
  return text;
}

/** The sum of the values of the series named `name` carrying `labels` (and any others) in a Prometheus text, or undefined when there is none. */
export function metricValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  let sum: number | undefined;
  const wanted = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  for (const line of text.split('\n')) {
    const match = /^([^{\s]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = (match[2] ?? '').split(',');
    if (wanted.every((pair) => have.includes(pair))) sum = (sum ?? 0) + Number(match[3]);
  }
  return sum;
}

/**
 * A whole FaaS cluster as processes: a routing node, storage nodes, schedulers and executors,
 * plus an SDK client. `stop()` stops every process by pid.
 */
export class FaasCluster extends TestCluster {
  readonly schedulers: RoleProcess[] = [];
  readonly executors: RoleProcess[] = [];

  get schedulerAddresses(): string[] {
    return this.schedulers.map((scheduler) => String(scheduler.ready['address']));
  }

  /** Routing, `nodes` storage nodes (replication `global`), `schedulers` schedulers, `executors` executors. */
  /** `executorArgs[i]`: extra arguments of executor i. */
  async startAll(options: { nodes?: number; global?: number; schedulers?: number; executors?: number; executorTimeoutMs?: number; workers?: number; executorArgs?: readonly (readonly string[])[] } = {}): Promise<void> {
    await this.startRouting({ global: options.global ?? 1 });
    for (let n = 0; n < (options.nodes ?? 1); n++) await this.startNode(`node-${n}`);
    await this.waitForRing();
    for (let s = 0; s < (options.schedulers ?? 1); s++) await this.startScheduler(options.executorTimeoutMs ?? 1000);
    await Promise.all(Array.from({ length: options.executors ?? 2 }, (_, index) => this.startExecutor(options.workers ?? 4, options.executorArgs?.[index] ?? [])));
    await this.waitForExecutors();
  }

  async startScheduler(executorTimeoutMs = 1000): Promise<RoleProcess> {
    const scheduler = await startProcess(['scheduler', '--routing', this.routingAddresses.join(','), '--executor-timeout-ms', String(executorTimeoutMs), '--metrics-port', '0']);
    this.schedulers.push(scheduler);
    return scheduler;
  }

  /** An executor; `extra` arguments go last (`--isolation none`, ...). */
  async startExecutor(workers = 4, extra: readonly string[] = []): Promise<RoleProcess> {
    const executor = await startProcess(['executor', '--routing', this.routingAddresses.join(','), '--schedulers', this.schedulerAddresses.join(','), '--workers', String(workers), '--prewarm', '1', '--memory-mb', '128', '--metrics-port', '0', ...extra]);
    this.executors.push(executor);
    return executor;
  }

  /**
   * Waits (bounded) until every running scheduler's metrics count as many executors known as there
   * are executors running (each heard from); throws with the counts seen when that takes longer.
   */
  async waitForExecutors(timeoutMs = 10_000): Promise<void> {
    const expected = this.executors.filter((executor) => isAlive(executor.pid)).length;
    const schedulers = this.schedulers.filter((scheduler) => isAlive(scheduler.pid));
    let seen: (number | string | undefined)[] = [];
    const known = await eventually(async () => {
      seen = await Promise.all(
        schedulers.map(async (scheduler) => {
          try {
            return metricValue(await scrapeMetrics(scheduler), 'lfaas_scheduler_executors');
          } catch (error) {
            return error instanceof Error ? error.message : String(error);
          }
        }),
      );
      return seen.every((count) => count === expected);
    }, timeoutMs);
    if (!known) throw new Error(`the schedulers know ${JSON.stringify(seen)} executors after ${timeoutMs} ms, not ${expected}`);
  }

  /** An SDK client presenting `token` (default: the test file's admin token, from LFAAS_TOKEN). */
  async connect(token?: string): Promise<LatticeFaas> {
    return LatticeFaas.connect({ routing: this.routingAddresses, schedulers: this.schedulerAddresses, ...(token === undefined ? {} : { token }) });
  }

  override async stop(): Promise<void> {
    await Promise.all([...this.executors, ...this.schedulers].map((role) => stopProcess(role)));
    await super.stop();
  }
}
