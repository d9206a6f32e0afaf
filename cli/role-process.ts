/**
 * Role processes as children: `startRole` spawns `lfaas <role>` from the compiled CLI and waits for
 * its `ready <json>` line; `stopChildren` stops children by pid. Shared by `lfaas up`, its
 * supervisor, the tests and the benches.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

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

