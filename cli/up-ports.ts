/**
 * The fixed ports of `lfaas up`, so a cluster restarted on the same folder is where it was (the
 * state file and any exported `LFAAS_*` stay right). From a base port B (default 7100):
 *
 *   routing node           B
 *   schedulers             B+100, B+101, ...
 *   executors              B+200, B+201, ...
 *   storage nodes          B+300...: node 0's control port, then its shards, then node 1's...
 *   HTTP ingress           B-20 (7080)
 *   dashboard              B-19 (7081)
 *
 * Each group can be moved on its own (`--routing-port`, `--scheduler-port`, ...). Metrics ports
 * are not fixed (the kernel picks them; `up` prints them and the ring carries storage nodes').
 * Before anything starts, every port is tried: one taken fails `up` at once, naming the port, its
 * role and, when this machine says, the process holding it.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { UsageError } from './exit-codes.js';

export const DEFAULT_BASE_PORT = 7100;
const SCHEDULER_OFFSET = 100;
const EXECUTOR_OFFSET = 200;
const STORAGE_OFFSET = 300;
const HTTP_OFFSET = -20;
const DASHBOARD_OFFSET = -19;
/** Processes looked at, at most, to name a port's holder. */
const PROCESSES_SCANNED_MAX = 4096;

export interface PortOptions {
  readonly basePort: number;
  readonly routingPort?: number;
  readonly schedulerPort?: number;
  readonly executorPort?: number;
  readonly storagePort?: number;
  /** 0: no ingress. */
  readonly httpPort?: number;
  /** 0: no dashboard. */
  readonly dashboardPort?: number;
  readonly shards: number;
}

/** Where each role listens. */
export interface PortLayout {
  readonly routing: number;
  scheduler(index: number): number;
  executor(index: number): number;
  /** Storage node `index`: its control port and its shards'. */
  storage(index: number): { readonly control: number; readonly shards: readonly number[] };
  /** 0: no ingress. */
  readonly http: number;
  /** 0: no dashboard. */
  readonly dashboard: number;
}

export function portLayout(options: PortOptions): PortLayout {
  const base = options.basePort;
  const schedulerFirst = options.schedulerPort ?? base + SCHEDULER_OFFSET;
  const executorFirst = options.executorPort ?? base + EXECUTOR_OFFSET;
  const storageFirst = options.storagePort ?? base + STORAGE_OFFSET;
  return {
    routing: options.routingPort ?? base,
    scheduler: (index) => schedulerFirst + index,
    executor: (index) => executorFirst + index,
    storage: (index) => {
      const control = storageFirst + index * (options.shards + 1);
      return { control, shards: Array.from({ length: options.shards }, (_, shard) => control + 1 + shard) };
    },
    http: options.httpPort ?? Math.max(0, base + HTTP_OFFSET),
    dashboard: options.dashboardPort ?? Math.max(0, base + DASHBOARD_OFFSET),
  };
}

/** A port and the role that will bind it. */
export interface PlannedPort {
  readonly port: number;
  readonly role: string;
}

/** Every port of a cluster of this shape, with its role. */
export function plannedPorts(layout: PortLayout, counts: { readonly nodes: number; readonly schedulers: number; readonly executors: number; readonly ingress: boolean; readonly dashboard?: boolean }): PlannedPort[] {
  const ports: PlannedPort[] = [{ port: layout.routing, role: 'routing' }];
  for (let s = 0; s < counts.schedulers; s++) ports.push({ port: layout.scheduler(s), role: `scheduler-${s}` });
  for (let e = 0; e < counts.executors; e++) ports.push({ port: layout.executor(e), role: `executor-${e}` });
  for (let n = 0; n < counts.nodes; n++) {
    const node = layout.storage(n);
    ports.push({ port: node.control, role: `node-${n} (control)` });
    node.shards.forEach((port, shard) => ports.push({ port, role: `node-${n} shard ${shard}` }));
  }
  if (counts.ingress && layout.http > 0) ports.push({ port: layout.http, role: 'HTTP ingress' });
  if (counts.dashboard === true && layout.dashboard > 0) ports.push({ port: layout.dashboard, role: 'dashboard' });
  return ports;
}

/** Whether `port` can be bound on 127.0.0.1 now. */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Throws a UsageError (exit 2; a clear message, at once) when two roles would share a port, a port is out of range,
 * or one is taken.
 */
export async function checkPortsFree(ports: readonly PlannedPort[]): Promise<void> {
  const seen = new Map<number, string>();
  for (const { port, role } of ports) {
    if (port < 1 || port > 65535) throw new UsageError(`up: ${role} would listen on port ${port}, outside 1-65535: choose another --base-port`);
    const other = seen.get(port);
    if (other !== undefined) throw new UsageError(`up: ${role} and ${other} would both listen on port ${port}: move one (--base-port, --routing-port, --scheduler-port, --executor-port, --storage-port, --http-port)`);
    seen.set(port, role);
  }
  const free = await Promise.all(ports.map(({ port }) => portFree(port)));
  const taken = ports.filter((_, index) => !free[index]);
  if (taken.length === 0) return;
  const first = taken[0]!;
  const holder = portHolder(first.port);
  const others = taken.length > 1 ? ` (and ${taken.length - 1} more: ${taken.slice(1, 6).map(({ port }) => port).join(', ')}${taken.length > 6 ? ', ...' : ''})` : '';
  throw new UsageError(
    `up: port ${first.port} (for ${first.role}) is taken${holder === undefined ? '' : ` by ${holder}`}${others}: stop what holds it, or start on other ports (--base-port <port>)`,
  );
}

/**
 * The process listening on `port`, as `pid N (command line)`, when /proc says (Linux, and only
 * processes this user may inspect); undefined otherwise.
 */
export function portHolder(port: number): string | undefined {
  try {
    const inodes = new Set<string>();
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try {
        text = readFileSync(table, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        // local_address is fields[1] (hex ip:port), st fields[3] (0A: LISTEN), inode fields[9].
        if (fields.length > 9 && fields[1]!.endsWith(`:${hexPort}`) && fields[3] === '0A') inodes.add(fields[9]!);
      }
    }
    if (inodes.size === 0) return undefined;
    const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).slice(0, PROCESSES_SCANNED_MAX);
    for (const pid of pids) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        let target: string;
        try {
          target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          continue;
        }
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode === undefined || !inodes.has(inode)) continue;
        return `pid ${pid} (${commandLineOf(pid)}${parentNote(pid)})`;
      }
    }
  } catch {
    // Best effort: the message names the port either way.
  }
  return undefined;
}

function commandLineOf(pid: string): string {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((part) => part.length > 0).join(' ');
    return text.length > 160 ? `${text.slice(0, 157)}...` : text;
  } catch {
    return '?';
  }
}

/** ", started by pid P (its command line)" when the parent is an `lfaas up`. */
function parentNote(pid: string): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parent = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
    if (parent === undefined) return '';
    const command = commandLineOf(parent);
    return / up( |$)/.test(command) ? `, a role of lfaas up pid ${parent}` : '';
  } catch {
    return '';
  }
}
