/**
 * Hosts on one machine for multi-host tests: Linux network namespaces this file creates, one per
 * host, each with one address on a private /24, joined by a bridge in a namespace of its own
 * (veth pairs: `eth0` in the host, `v<i>` on the bridge). Nothing is added to the machine's own
 * namespace, so the machine's network is untouched and two runs never collide: every name has the
 * per-run prefix `lfaas-<pid>-`.
 *
 * Processes run as `ip netns exec <ns> <command>` (ip execs the command: the pid is the command's
 * own), each in a process group of its own so a host's death takes its children too. `kill(host)`
 * is a host dying: its processes SIGKILLed by pid, its bridge port taken down. `teardown()` stops
 * every process by pid and deletes every namespace by name (their links go with them); it runs
 * in afterAll and from a process exit hook, so a failed test leaves nothing behind.
 *
 * Needs root and iproute2 (`ip`); `NetnsLab.create` throws a clear error otherwise.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One host: its namespace and address. */
export interface NetnsHost {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  /** Its bridge port (in the bridge namespace). */
  readonly port: string;
}

/** A process started on a host. */
export interface HostProcess {
  readonly host: NetnsHost;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: string[];
  readonly stderr: string[];
}

const IP_TIMEOUT_MS = 10_000;
/** Lines kept per stream of a process (the tail is what a failure shows). */
const LINES_MAX = 2000;

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

export class NetnsLab {
  readonly hosts = new Map<string, NetnsHost>();
  private readonly processes: HostProcess[] = [];
  private readonly namespaces: string[] = [];
  private tornDown = false;
  private readonly onExit = (): void => this.teardownNow();

  private constructor(
    readonly prefix: string,
    readonly bridgeNs: string,
  ) {
    process.once('exit', this.onExit);
  }

  /**
   * Creates the bridge and `names.length` hosts, host i (from 1) at `<subnet>.<i>/24`. Throws with
   * what to do when namespaces cannot be made (not root, no `ip`), after removing what it made.
   */
  static create(names: readonly string[], subnet = '10.213.0'): NetnsLab {
    const prefix = `lfaas-${process.pid}`;
    const lab = new NetnsLab(prefix, `${prefix}-br`);
    try {
      lab.addNamespace(lab.bridgeNs);
    } catch (error) {
      lab.teardownNow();
      const detail = (error as { stderr?: string }).stderr ?? (error as Error).message;
      throw new Error(`the multi-host test needs network namespaces: \`ip netns add ${lab.bridgeNs}\` failed (${String(detail).trim()}). Run it as root on Linux with iproute2 installed.`);
    }
    try {
      ip(['-n', lab.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
      ip(['-n', lab.bridgeNs, 'link', 'set', 'br0', 'up']);
      names.forEach((name, index) => {
        const host: NetnsHost = { name, ns: `${prefix}-${name}`, address: `${subnet}.${index + 1}`, port: `v${index + 1}` };
        lab.addNamespace(host.ns);
        ip(['-n', host.ns, 'link', 'set', 'lo', 'up']);
        ip(['-n', host.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', host.port, 'netns', lab.bridgeNs]);
        ip(['-n', lab.bridgeNs, 'link', 'set', host.port, 'master', 'br0', 'up']);
        ip(['-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
        ip(['-n', host.ns, 'link', 'set', 'eth0', 'up']);
        lab.hosts.set(name, host);
      });
    } catch (error) {
      lab.teardownNow();
      throw error;
    }
    return lab;
  }

  private addNamespace(ns: string): void {
    ip(['netns', 'add', ns]);
    this.namespaces.push(ns);
  }

  host(name: string): NetnsHost {
    const host = this.hosts.get(name);
    if (host === undefined) throw new Error(`no host ${name}`);
    return host;
  }

  /** Starts `command args` on `host`, in a process group of its own. */
  spawn(hostName: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): HostProcess {
    const host = this.host(hostName);
    const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...env } });
    const started: HostProcess = { host, child, pid: child.pid ?? -1, stdout: [], stderr: [] };
    const keep = (lines: string[]) => (line: string): void => {
      lines.push(line);
      if (lines.length > LINES_MAX) lines.splice(0, lines.length - LINES_MAX);
    };
    createInterface({ input: child.stdout! }).on('line', keep(started.stdout));
    createInterface({ input: child.stderr! }).on('line', keep(started.stderr));
    this.processes.push(started);
    return started;
  }

  /** Resolves with the process's `ready <json>` line (rejects when it exits first, or after `timeoutMs`). */
  static ready(started: HostProcess, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const tail = (): string => started.stderr.slice(-20).join('\n');
      const timer = setTimeout(() => reject(new Error(`${started.host.name}: no ready line within ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
      const check = (line: string): void => {
        if (!line.startsWith('ready ')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line.slice('ready '.length)) as Record<string, unknown>);
      };
      for (const line of started.stdout) check(line);
      createInterface({ input: started.child.stdout! }).on('line', check);
      started.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${started.host.name}: exited (${code ?? signal}) before it was ready:\n${tail()}`));
      });
    });
  }

  /** Resolves with the exit code once `started` exits (SIGKILL after `timeoutMs`). */
  static exited(started: HostProcess, timeoutMs: number): Promise<number | null> {
    return new Promise((resolve) => {
      if (started.child.exitCode !== null || started.child.signalCode !== null) return resolve(started.child.exitCode);
      const timer = setTimeout(() => killGroup(started.pid, 'SIGKILL'), timeoutMs);
      started.child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  /** A host dies: every process started on it SIGKILLed (with its group), its link taken down. */
  kill(hostName: string): void {
    const host = this.host(hostName);
    for (const started of this.processes) if (started.host === host) killGroup(started.pid, 'SIGKILL');
    ip(['-n', this.bridgeNs, 'link', 'set', host.port, 'down']);
  }

  /** Stops every process (SIGTERM, SIGKILL after 3 s) and deletes every namespace. */
  async teardown(): Promise<void> {
    const running = this.processes.filter((started) => started.child.exitCode === null && started.child.signalCode === null);
    for (const started of running) killGroup(started.pid, 'SIGTERM');
    await Promise.all(running.map((started) => NetnsLab.exited(started, 3000)));
    this.teardownNow();
  }

  /** What teardown does, synchronously: SIGKILL every group, delete every namespace. */
  private teardownNow(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    process.removeListener('exit', this.onExit);
    for (const started of this.processes) killGroup(started.pid, 'SIGKILL');
    for (const ns of [...this.namespaces].reverse()) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // Already gone.
      }
    }
  }
}

/** Signals a process group we started (its leader's pid), ignoring one already gone. */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}
