/**
 * `lfaas up`: starts a local cluster as child processes on 127.0.0.1 and, with `--demo`, runs the
 * demo against it. Today the cluster is N gossiping lattice replicas (the KVS tier, issue 3,
 * replaces them with storage and routing nodes). Children are stopped by pid on exit, Ctrl-C or
 * SIGTERM, and stop themselves if this process dies (their stdin closes).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runDemo } from './demo.js';
import { freePorts } from './free-port.js';

export interface UpOptions {
  readonly replicas: number;
  readonly demo: boolean;
  readonly gossipPeriodMs: number;
}

const main = fileURLToPath(new URL('./main.js', import.meta.url));

async function startChild(args: string[], name: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, LFAAS_CHILD: '1' } });
  const lines = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s`)), 10_000);
    lines.on('line', (line) => {
      if (line.startsWith('ready ')) {
        clearTimeout(timer);
        resolve(line.slice('ready '.length));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready`));
    });
  });
  return { child, address };
}

export async function up(options: UpOptions): Promise<void> {
  const ports = await freePorts(options.replicas);
  const addresses = ports.map((port) => `tcp://127.0.0.1:${port}`);
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.pid === undefined) return resolve();
            const timer = setTimeout(() => {
              process.kill(child.pid!, 'SIGKILL');
              resolve();
            }, 3000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            process.kill(child.pid, 'SIGTERM');
          }),
      ),
    );
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().finally(() => process.exit(143)));

  try {
    console.log(`lfaas up: starting ${options.replicas} lattice replicas on 127.0.0.1 (gossip every ${options.gossipPeriodMs} ms)`);
    for (const [i, address] of addresses.entries()) {
      const peers = addresses.filter((other) => other !== address);
      const started = await startChild(['replica', '--id', `r${i}`, '--port', String(ports[i]), '--peers', peers.join(','), '--gossip-period-ms', String(options.gossipPeriodMs)], `replica r${i}`);
      children.push(started.child);
      console.log(`  replica r${i}  pid ${started.child.pid}  ${started.address}`);
    }
    console.log('  note: the KVS tier (storage + routing nodes, disk, rings) arrives with issue 3; these replicas are its gossip core.');
    if (options.demo) {
      await runDemo(addresses);
      return;
    }
    console.log('running; Ctrl-C stops the cluster.');
    await new Promise<never>(() => {});
  } finally {
    await stopAll();
  }
}
