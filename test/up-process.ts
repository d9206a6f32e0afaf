/**
 * `lfaas up` as a process for tests: started with its output captured, its pids read from what it
 * prints, and whatever of them is left killed at the end.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reservePortRange } from '../cli/index.js';
import { CLI, isAlive } from './cluster.js';

/** Exited: no such process, or a zombie nobody reaped yet (an orphan under a non-reaping init). */
export function isGone(pid: number): boolean {
  if (!isAlive(pid)) return true;
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return !isAlive(pid);
  }
}

/** Every `pid NNN` printed by `up`. */
export function pidsIn(output: string): number[] {
  return [...output.matchAll(/\bpid (\d+)\b/g)].map((match) => Number(match[1]));
}

/**
 * Starts `lfaas up <args>`. Unless `args` has `--base-port`, a free range of ports is reserved
 * for it (released when it exits), so test files running at once never collide on up's fixed
 * ports. It runs in `options.cwd`, else in its `--data` folder (its state file,
 * `.lfaas/cluster.json`, lands there, never in the repository).
 */
export function startUp(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  options: { readonly cwd?: string } = {},
): { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; basePort: number; cwd: string } {
  const dataIndex = args.indexOf('--data');
  const cwd = options.cwd ?? (dataIndex >= 0 && args[dataIndex + 1] !== undefined ? args[dataIndex + 1]! : mkdtempSync(join(tmpdir(), 'lfaas-up-cwd-')));
  const given = args.indexOf('--base-port');
  const range = given >= 0 ? { base: Number(args[given + 1]), release: () => {} } : reservePortRange();
  const child = spawn(process.execPath, [CLI, 'up', ...args, ...(given >= 0 ? [] : ['--base-port', String(range.base)])], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      range.release();
      resolve({ code, signal });
    }),
  );
  return { child, output: () => text, exited, basePort: range.base, cwd };
}

/** Cleanup only: SIGKILL whatever of `pids` is still running (processes this test started). */
export function killLeftovers(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      if (!isGone(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

