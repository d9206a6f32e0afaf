/**
 * `lfaas up` as a child process for benchmarks: started with extra arguments in a temporary data
 * folder (its working folder too, so its state file lands there) on a free range of ports,
 * waited for (bounded), its addresses, admin token and output read back.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePortRange } from '../../cli/index.js';
import type { MonitorEvent } from '../../monitor/index.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'main.js');

export interface UpProcess {
  readonly child: ChildProcess;
  readonly routing: string;
  readonly schedulers: string[];
  readonly token: string;
  /** The first scheduler's metrics URL. */
  readonly metrics: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  readonly data: string;
}

/** The monitor's events in what `lfaas up --autoscale` printed (one JSON log line each). */
export function monitorEventsOf(up: UpProcess): MonitorEvent[] {
  return up
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"name":"monitor"') && line.includes('"event"'))
    .map((line) => (JSON.parse(line) as { event: MonitorEvent }).event);
}

/** `lfaas up` in a child process: its addresses, token and scheduler metrics port once ready. */
export async function startUp(args: readonly string[]): Promise<UpProcess> {
  const data = mkdtempSync(join(tmpdir(), 'lfaas-bench-autoscale-'));
  // Its own ports (not the defaults a developer's cluster may hold) and its own folder for the state file.
  const ports = await freePortRange();
  const child = spawn(process.execPath, [CLI, 'up', '--data', data, '--base-port', String(ports.base), ...args], { cwd: data, stdio: ['pipe', 'pipe', 'pipe'] });
  child.once('exit', () => ports.release());
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const ready = args.includes('--autoscale') ? 'autoscaling:' : 'running; Ctrl-C';
  for (let waited = 0; !text.includes(ready); waited += 100) {
    if (child.exitCode !== null || waited > 90_000) throw new Error(`lfaas up did not get ready:\n${text.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const routing = /export LFAAS_ROUTING=(\S+)/.exec(text)![1]!;
  const schedulers = /export LFAAS_SCHEDULERS=(\S+)/.exec(text)![1]!.split(',');
  const metrics = /scheduler-0 .*metrics (http:\/\/\S+)/.exec(text)![1]!;
  const token = readFileSync(join(data, 'keys', 'admin.token'), 'utf8').trim();
  return { child, routing, schedulers, token, metrics, output: () => text, data };
}

