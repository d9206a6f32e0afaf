/**
 * `lfaas up` as a real process tree: with `--demo` it starts a routing node and storage nodes, runs
 * the shared-counter demo, stops every child and exits 0; killed with SIGKILL (no chance to stop
 * anything), its children notice their closed stdin and exit by themselves.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, eventually, isAlive } from './cluster.js';

/** Exited: no such process, or a zombie nobody reaped yet (an orphan under a non-reaping init). */
function isGone(pid: number): boolean {
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
function pidsIn(output: string): number[] {
  return [...output.matchAll(/\bpid (\d+)\b/g)].map((match) => Number(match[1]));
}

function startUp(args: readonly string[]): { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [CLI, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => text, exited };
}

/** Cleanup only: SIGKILL whatever of `pids` is still running (processes this test started). */
function killLeftovers(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      if (!isGone(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

describe('lfaas up', () => {
  it('--demo: runs the demo, exits 0, and leaves no child process behind', async () => {
    const data = mkdtempSync(join(tmpdir(), 'lfaas-up-demo-'));
    const up = startUp(['--demo', '--data', data]);
    let pids: number[] = [];
    try {
      const timeout = setTimeout(() => up.child.kill('SIGKILL'), 60_000);
      const { code, signal } = await up.exited;
      clearTimeout(timeout);
      const output = up.output();
      expect({ code, signal }, output).toEqual({ code: 0, signal: null });
      expect(output).toContain('cluster ready');
      expect(output).toContain('the Counter kept all 100 increments');
      expect(output).toMatch(/^\s*Counter lattice\s+100\s+100\s+0\s*$/m);
      // The LWW register's row: value, expected, lost; and the summary's lost count.
      const row = /^\s*naive LWW read-modify\s+(\d+)\s+100\s+(\d+)\s*$/m.exec(output);
      expect(row, output).not.toBeNull();
      expect(Number(row![1]) + Number(row![2])).toBe(100);
      expect(output).toMatch(new RegExp(`the LWW read-modify-write lost ${row![2]} concurrent updates`));
      pids = pidsIn(output);
      // One routing node and three storage nodes (the defaults).
      expect(pids).toHaveLength(4);
      expect(new Set(pids).size).toBe(4);
      expect(await eventually(() => pids.every(isGone), 5000), `still running: ${pids.filter((pid) => !isGone(pid)).join(', ')}`).toBe(true);
    } finally {
      killLeftovers(pids);
      rmSync(data, { recursive: true, force: true });
    }
  }, 70_000);

  it('SIGKILL of `up` itself: every child sees its stdin close and exits within 5 s', async () => {
    const data = mkdtempSync(join(tmpdir(), 'lfaas-up-kill-'));
    const up = startUp(['--data', data]);
    let pids: number[] = [];
    try {
      expect(await eventually(() => up.output().includes('cluster ready') || up.child.exitCode !== null, 30_000), up.output()).toBe(true);
      expect(up.output()).toContain('cluster ready');
      pids = pidsIn(up.output());
      expect(pids).toHaveLength(4);
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
});
