/**
 * The supervisor of `lfaas up`: it starts each role process and, when one exits without being
 * asked to (a crash guard's EXIT_FATAL after a bug, a kill -9, an out-of-memory kill), starts it
 * again on the same ports and data, so its peers find it where they left it. Restarts back off
 * exponentially (from 200 ms to 10 s) and stop after RESTARTS_MAX consecutive failed attempts; every exit and
 * restart is one line on the log, and counted.
 */
import type { ChildProcess } from 'node:child_process';
import { startRole } from './role-process.js';
import type { Started } from './role-process.js';

/** A role process under supervision. */
export interface SupervisedRole {
  /** For logs: `scheduler-0`, `node-1`... */
  readonly name: string;
  /**
   * The command line of a start: the first (`last` undefined) or a restart, given the `ready`
   * report of the run before (to bind the ports it had).
   */
  args(last: Readonly<Record<string, unknown>> | undefined): string[];
}

/**
 * How long a role may take to print its ready line: generous, since on a loaded machine (a test
 * suite beside a cluster on two cores) a sandboxed executor has taken more than 10 s.
 */
const READY_TIMEOUT_MS = 30_000;
/** Attempts in a row that may fail before a role is given up. */
const RESTARTS_MAX = 20;
const BACKOFF_FIRST_MS = 200;
const BACKOFF_MAX_MS = 10_000;
/** A run longer than this resets the backoff (the role was healthy in between). */
const HEALTHY_RUN_MS = 30_000;

interface Supervised {
  readonly role: SupervisedRole;
  /** Set while it is being removed: a clean exit (code 0) ends its supervision and calls this. */
  onCleanExit?: () => void;
  child: ChildProcess;
  ready: Record<string, unknown>;
  startedAtMs: number;
  failuresInRow: number;
}

export class Supervisor {
  /** Restarts done, for all roles. */
  restarts = 0;
  private readonly supervised: Supervised[] = [];
  private stopping = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly log: (line: string) => void) {}

  /** Starts `role` (waiting for its ready line) and watches it from then on. */
  async start(role: SupervisedRole): Promise<Started> {
    const started = await startRole(role.args(undefined), role.name, { readyTimeoutMs: READY_TIMEOUT_MS });
    const entry: Supervised = { role, child: started.child, ready: started.ready, startedAtMs: Date.now(), failuresInRow: 0 };
    this.supervised.push(entry);
    this.watch(entry);
    return started;
  }

  /** The role processes running now. */
  children(): ChildProcess[] {
    return this.supervised.map((entry) => entry.child);
  }

  /**
   * Stops watching one role (its exit is expected from now on: a node being removed) and returns
   * its process, or undefined when no role has that name.
   */
  retire(name: string): ChildProcess | undefined {
    const index = this.supervised.findIndex((entry) => entry.role.name === name);
    if (index < 0) return undefined;
    const [entry] = this.supervised.splice(index, 1);
    entry!.child.removeAllListeners('exit');
    return entry!.child;
  }

  /** From now on, exits are expected: nothing is restarted. */
  stopWatching(): void {
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /**
   * Resolves once `name` exits with code 0 (a storage node that handed every key off), and stops
   * supervising it then; any other exit meanwhile (a kill -9 in the middle of a hand-off) is
   * restarted as usual, on its ports and data, so nothing it still held is lost.
   */
  cleanExit(name: string): Promise<void> {
    const entry = this.supervised.find((candidate) => candidate.role.name === name);
    if (entry === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      entry.onCleanExit = resolve;
    });
  }

  /** The ready report of the current run of `name`. */
  readyOf(name: string): Readonly<Record<string, unknown>> | undefined {
    return this.supervised.find((candidate) => candidate.role.name === name)?.ready;
  }

  private watch(entry: Supervised): void {
    entry.child.once('exit', (code, signal) => {
      if (this.stopping) return;
      if (entry.onCleanExit !== undefined && code === 0) {
        this.supervised.splice(this.supervised.indexOf(entry), 1);
        this.log(`up: ${entry.role.name} (pid ${entry.child.pid}) left the cluster`);
        entry.onCleanExit();
        return;
      }
      const ranMs = Date.now() - entry.startedAtMs;
      if (ranMs > HEALTHY_RUN_MS) entry.failuresInRow = 0;
      this.log(`up: ${entry.role.name} (pid ${entry.child.pid}) exited ${signal === null ? `with code ${code}` : `on ${signal}`} after ${Math.round(ranMs / 1000)} s; restarting it on its ports`);
      this.scheduleRestart(entry);
    });
  }

  private scheduleRestart(entry: Supervised): void {
    if (this.stopping) return;
    if (entry.failuresInRow >= RESTARTS_MAX) {
      this.log(`up: ${entry.role.name} failed ${RESTARTS_MAX} times in a row; giving up on it`);
      return;
    }
    const delayMs = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** entry.failuresInRow);
    entry.failuresInRow++;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.restart(entry);
    }, delayMs);
    this.timers.add(timer);
  }

  private async restart(entry: Supervised): Promise<void> {
    if (this.stopping) return;
    try {
      const started = await startRole(entry.role.args(entry.ready), entry.role.name, { readyTimeoutMs: READY_TIMEOUT_MS });
      if (this.stopping) {
        started.child.kill('SIGTERM');
        return;
      }
      entry.child = started.child;
      entry.ready = started.ready;
      entry.startedAtMs = Date.now();
      this.restarts++;
      this.log(`up: ${entry.role.name} restarted, pid ${started.child.pid} (restart ${this.restarts} of this cluster)`);
      this.watch(entry);
    } catch (error) {
      this.log(`up: restarting ${entry.role.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      this.scheduleRestart(entry);
    }
  }
}

/** The port of a `tcp://host:port` address in a ready report. */
export function portOf(address: unknown): string {
  const port = /:(\d+)(?:#|$)/.exec(String(address))?.[1];
  if (port === undefined) throw new Error(`no port in ${String(address)}`);
  return port;
}
