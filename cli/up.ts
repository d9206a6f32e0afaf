/**
 * `lfaas up`: a local cluster as child processes on 127.0.0.1: one routing node and N storage
 * nodes (each with its shards and lmdb environments under the data folder). Prints where
 * everything is; with `--demo` runs the shared-counter demo and stops. Children are stopped by pid
 * on exit, Ctrl-C or SIGTERM, and stop themselves if this process dies (their stdin closes).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo } from './demo.js';
import { freePorts } from './free-port.js';
import { waitForRing } from './ring-ready.js';

export interface UpOptions {
  readonly nodes: number;
  readonly shards: number;
  readonly replication: number;
  readonly data: string;
  readonly demo: boolean;
  readonly gossipPeriodMs: number;
}

/** The compiled CLI beside this module; from the TypeScript sources (tests), the built one. */
const main = existsSync(fileURLToPath(new URL('./main.js', import.meta.url)))
  ? fileURLToPath(new URL('./main.js', import.meta.url))
  : fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

export interface Started {
  readonly child: ChildProcess;
  readonly ready: Record<string, unknown>;
}

export interface StartRoleOptions {
  /** Collect the child's stderr lines here (and put them in errors) instead of inheriting it. */
  readonly stderr?: string[];
  readonly readyTimeoutMs?: number;
}

/** Spawns `lfaas <args>` and waits for its `ready <json>` line (10 s by default). */
export async function startRole(args: readonly string[], name: string, options: StartRoleOptions = {}): Promise<Started> {
  const captured = options.stderr;
  const child = spawn(process.execPath, [main, ...args], { stdio: ['pipe', 'pipe', captured === undefined ? 'inherit' : 'pipe'], env: { ...process.env, LFAAS_CHILD: '1' } });
  if (captured !== undefined) createInterface({ input: child.stderr! }).on('line', (line) => captured.push(line));
  const timeoutMs = options.readyTimeoutMs ?? 10_000;
  const tail = (): string => (captured === undefined || captured.length === 0 ? '' : `: ${captured.join('\n')}`);
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<Record<string, unknown>>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms${tail()}`));
    }, timeoutMs);
    lines.on('line', (line) => {
      if (!line.startsWith('ready ')) return;
      clearTimeout(timer);
      resolveReady(JSON.parse(line.slice('ready '.length)) as Record<string, unknown>);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready${tail()}`));
    });
  });
  return { child, ready };
}

/** Stops children by pid: SIGTERM, then SIGKILL after 3 s; waits for each to exit. */
export async function stopChildren(children: readonly ChildProcess[], signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return done();
          const kill = (how: NodeJS.Signals): void => {
            try {
              process.kill(child.pid!, how);
            } catch {
              // Already gone.
            }
          };
          // After SIGKILL, give up waiting after 2 s more (a zombie never reports its exit here).
          const timer = setTimeout(() => {
            kill('SIGKILL');
            setTimeout(done, 2000).unref();
          }, 3000);
          child.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          kill(signal);
        }),
    ),
  );
}

export async function up(options: UpOptions): Promise<void> {
  const data = resolve(options.data);
  const [routingPort] = await freePorts(1);
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await stopChildren(children);
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().finally(() => process.exit(143)));

  try {
    console.log(`lfaas up: 1 routing node + ${options.nodes} storage nodes x ${options.shards} shards on 127.0.0.1, replication factor ${options.replication}, data in ${data}`);
    const routing = await startRole(['routing', '--port', String(routingPort), '--global', String(options.replication)], 'routing');
    children.push(routing.child);
    const routingAddress = String(routing.ready['address']);
    console.log(`  [1/${1 + options.nodes}] routing  pid ${routing.child.pid}  ${routingAddress}`);
    const starts = await Promise.all(
      Array.from({ length: options.nodes }, (_, n) =>
        startRole(
          ['kvs', '--id', `node-${n}`, '--routing', routingAddress, '--shards', String(options.shards), '--data', data, '--metrics-port', '0', '--gossip-period-ms', String(options.gossipPeriodMs), '--port', '0'],
          `storage node node-${n}`,
        ),
      ),
    );
    for (const [n, started] of starts.entries()) {
      children.push(started.child);
      const ready = started.ready;
      console.log(
        `  [${2 + n}/${1 + options.nodes}] node-${n}   pid ${started.child.pid}  control ${String(ready['control'])}  shards ${(ready['shards'] as string[]).join(' ')}  metrics http://127.0.0.1:${String(ready['metricsPort'])}/metrics  (${String(ready['keys'])} keys reloaded)`,
      );
    }
    console.log(`\ncluster ready. Try: lfaas kvs put greeting '"hello"' --routing ${routingAddress}; lfaas kvs stat --routing ${routingAddress}`);
    if (options.demo) {
      // Until every node has joined and the ring lists it.
      await waitForRing([routingAddress], starts.flatMap((started) => started.ready['shards'] as string[]));
      const ok = await runDemo([routingAddress]);
      if (!ok) process.exitCode = 1;
      return;
    }
    console.log('running; Ctrl-C stops the cluster.');
    await new Promise<never>(() => {});
  } finally {
    await stopAll();
  }
}
