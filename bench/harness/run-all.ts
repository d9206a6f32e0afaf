/**
 * `npm run bench -- all [--quick]`: every benchmark in turn, each as its own child process
 * (`node dist/bench/main.js <name> [--quick]`, its own process group) so that one crash or leak
 * cannot spoil the next; each bounded by a time limit, its process group killed (by the child's
 * pid) on overrun. A benchmark fails when it exits non-zero, overruns, or writes no new document.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { killQuietly } from './child-process.js';

/** Per benchmark: 20 min for a full run, 6 min with --quick. */
export const TIME_LIMIT_MS = { full: 20 * 60_000, quick: 6 * 60_000 } as const;
/** After SIGTERM, a benchmark's processes get this long before SIGKILL. */
const KILL_GRACE_MS = 10_000;

/** Runs one benchmark's child process; resolves to why it failed, or undefined. */
function runOne(mainPath: string, name: string, quick: boolean, timeLimitMs: number, onChild: (pid: number | undefined) => void): Promise<string | undefined> {
  return new Promise((resolve) => {
    // detached: its own process group, so that an overrun kills its cluster and peers too.
    const child = spawn(process.execPath, [mainPath, name, ...(quick ? ['--quick'] : [])], { stdio: 'inherit', detached: true });
    onChild(child.pid);
    let overran = false;
    let grace: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      overran = true;
      if (child.pid !== undefined) killQuietly(-child.pid, 'SIGTERM');
      grace = setTimeout(() => {
        if (child.pid !== undefined) killQuietly(-child.pid, 'SIGKILL');
      }, KILL_GRACE_MS);
    }, timeLimitMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve(`could not start: ${error.message}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (grace !== undefined) clearTimeout(grace);
      // Whatever it left behind in its group (a peer it failed to stop) goes too.
      if (child.pid !== undefined) killQuietly(-child.pid, 'SIGKILL');
      onChild(undefined);
      if (overran) resolve(`overran its time limit of ${timeLimitMs / 60_000} min and was killed`);
      else if (code !== 0) resolve(`exited with ${code === null ? `signal ${signal}` : `code ${code}`}`);
      else resolve(undefined);
    });
  });
}

/** The modification time of a benchmark's document, 0 when there is none. */
function documentTime(resultsDir: string, name: string): number {
  try {
    return statSync(join(resultsDir, `${name}.json`)).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Runs `names` one after another through `mainPath` (dist/bench/main.js); returns the failures by
 * benchmark name. SIGINT/SIGTERM to this process stops the running benchmark's group first.
 */
export async function runAll(options: { mainPath: string; names: readonly string[]; quick: boolean; resultsDir: string; timeLimitMs?: number }): Promise<Map<string, string>> {
  const timeLimitMs = options.timeLimitMs ?? (options.quick ? TIME_LIMIT_MS.quick : TIME_LIMIT_MS.full);
  const failures = new Map<string, string>();
  let running: number | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (running !== undefined) killQuietly(-running, 'SIGKILL');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const [index, name] of options.names.entries()) {
      console.log(`\n=== bench ${index + 1}/${options.names.length}: ${name}${options.quick ? ' --quick' : ''} (limit ${timeLimitMs / 60_000} min) ===`);
      const before = documentTime(options.resultsDir, name);
      const startedAt = Date.now();
      const failure = await runOne(options.mainPath, name, options.quick, timeLimitMs, (pid) => (running = pid));
      const wrote = documentTime(options.resultsDir, name) > before;
      const why = failure ?? (wrote ? undefined : 'exited 0 but wrote no new document');
      console.log(`=== ${name}: ${why === undefined ? 'done' : `FAILED: ${why}`} in ${((Date.now() - startedAt) / 1000).toFixed(0)} s ===`);
      if (why !== undefined) failures.set(name, why);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return failures;
}
