/**
 * The monitor's host: its tasks carried out on the real KVS and a node provider, and the monitor
 * as a running machine (in `lfaas up --autoscale`, beside the local provider; `lfaas monitor` runs
 * one as its own process, deciding and logging what it would do when it has no provider).
 *
 * - The lease (`lfaas/monitor/lease`): an LWW record {holder, untilMs}; taken when absent, expired
 *   or already this monitor's, written with a replicated acknowledgement and read back: the holder
 *   read back is the one that acts.
 * - Events: a JSON line on stderr each, and the event log (`lfaas/events`, an LWW list of the last
 *   500 events, written only by the lease holder) that `lfaas events` prints.
 */
import { KvsClient, ServiceAnnouncer } from '../client/index.js';
import { advertised } from './advertise.js';
import { schedulersFor } from './discovered-schedulers.js';
import { startMetricsServer } from '../kvs/index.js';
import type { MetricSample } from '../kvs/index.js';
import { ErrorCode, HybridClock, LfaasError, Lww, ensureLfaasError } from '../lattices/index.js';
import { DEFAULT_POLICY, MonitorNode } from '../monitor/index.js';
import type { AutoscalePolicy, MonitorEvent, MonitorTask, NodeProvider } from '../monitor/index.js';
import { bindTransport, runMachine, systemClock } from '../protocol/index.js';
import type { KeyPair, MachineShell, MachineTasks, ShellOptions } from '../protocol/index.js';
import { kubernetesProviderFromCli } from './kubernetes-monitor.js';
import type { KubernetesCliOptions } from './kubernetes-monitor.js';
import { announceReady, guardProcess, stopOnSignals } from './process.js';
import { roleLog, setLogNode } from './log.js';
import { startTracing } from './tracing.js';
import { roleSecurity } from './security.js';
import { wireCountersOf, wireSamples } from './wire-metrics.js';

export const LEASE_KEY = 'lfaas/monitor/lease';
export const EVENTS_KEY = 'lfaas/events';
/** Events kept in the log. */
export const EVENTS_MAX = 500;

/** The monitor's tasks on the KVS and a provider. */
export class MonitorHost implements MachineTasks {
  readonly counters = { events: 0, eventsFailed: 0 };
  private readonly clock: HybridClock;
  private appending: Promise<void> = Promise.resolve();
  /** The event log as this monitor last wrote it (undefined: not read yet). */
  private events: MonitorEvent[] | undefined;

  constructor(
    private readonly kvs: KvsClient,
    private readonly name: string,
    private readonly provider: NodeProvider | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.clock = new HybridClock(`monitor-${name}`, () => Date.now());
  }

  run(task: unknown, done: (error: Error | undefined, result?: unknown) => void): void {
    this.perform(task as MonitorTask).then(
      (result) => done(undefined, result),
      (error: unknown) => done(ensureLfaasError(error)),
    );
  }

  private async perform(task: MonitorTask): Promise<unknown> {
    switch (task.op) {
      case 'lease':
        return this.lease(task.holder, task.leaseMs);
      case 'event':
        await this.record(task.event);
        return undefined;
      case 'provide': {
        if (this.provider === undefined) throw new LfaasError(ErrorCode.INTERNAL, 'this monitor has no node provider: it decides and logs only');
        const action = task.action;
        if (action.kind === 'add') {
          const provider = this.provider;
          // Several at once start side by side; the names of those that started.
          const added = await Promise.allSettled(Array.from({ length: action.count ?? 1 }, () => provider.add(action.role)));
          const names = added.filter((outcome) => outcome.status === 'fulfilled').map((outcome) => (outcome as PromiseFulfilledResult<string>).value);
          const failed = added.find((outcome) => outcome.status === 'rejected');
          if (names.length === 0 && failed !== undefined) throw (failed as PromiseRejectedResult).reason;
          return names.join(' ');
        }
        if (action.kind === 'replicate') throw new LfaasError(ErrorCode.INTERNAL, 'replication goes through the KVS, not a provider');
        await this.provider.remove(action.role, action.target);
        return action.target;
      }
      case 'replicate':
        await this.kvs.setReplication(task.key, { global: task.replicas, local: task.shards });
        return undefined;
    }
  }

  /** Takes or renews the lease; resolves with the holder read back. */
  private async lease(holder: string, leaseMs: number): Promise<string> {
    const current = leaseOf((await this.kvs.getAll(LEASE_KEY))?.reveal());
    const now = Date.now();
    if (current === undefined || current.untilMs < now || current.holder === holder) {
      await this.kvs.put(LEASE_KEY, Lww.write(this.clock, { holder, untilMs: now + leaseMs }), { ack: 'replicated' });
    }
    const after = leaseOf((await this.kvs.getAll(LEASE_KEY))?.reveal());
    const acting = after !== undefined && after.untilMs >= Date.now() ? after.holder : '';
    // Another monitor may append while this one does not hold the lease: read the log again then.
    if (acting !== holder) this.events = undefined;
    return acting;
  }

  private async record(event: MonitorEvent): Promise<void> {
    this.counters.events++;
    this.log(JSON.stringify({ level: event.kind === 'failed' ? 40 : 30, name: 'monitor', msg: `${event.kind}${event.action === undefined ? '' : ` ${event.action} ${event.role}`}${event.node === undefined ? '' : ` ${event.node}`}: ${event.reason}`, event }));
    // One append at a time: each reads the list, adds to it and writes it back.
    const appended = this.appending.then(() => this.append(event));
    this.appending = appended.catch(() => undefined);
    await appended;
  }

  /**
   * Only the lease holder appends, so its own copy of the log is the log: read once (merged over
   * every replica), then kept here and written whole (a read of one replica can be stale while
   * keys move, and appending to a stale list would drop events).
   */
  private async append(event: MonitorEvent): Promise<void> {
    try {
      if (this.events === undefined) {
        const stored = (await this.kvs.getAll(EVENTS_KEY))?.reveal();
        this.events = Array.isArray(stored) ? (stored as MonitorEvent[]) : [];
      }
      this.events = [...this.events, event].slice(-EVENTS_MAX);
      await this.kvs.put(EVENTS_KEY, Lww.write(this.clock, this.events), { ack: 'replicated' });
    } catch (error) {
      // The log line stands; the stored log misses this event (counted).
      this.counters.eventsFailed++;
      this.log(JSON.stringify({ level: 40, name: 'monitor', msg: `event not stored: ${(error as Error).message}` }));
    }
  }
}

function leaseOf(value: unknown): { holder: string; untilMs: number } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { holder, untilMs } = value as { holder?: unknown; untilMs?: unknown };
  return typeof holder === 'string' && typeof untilMs === 'number' ? { holder, untilMs } : undefined;
}

/** The events in the KVS's log, oldest first. */
export async function readEvents(kvs: KvsClient): Promise<MonitorEvent[]> {
  const stored = (await kvs.get(EVENTS_KEY))?.reveal();
  return Array.isArray(stored) ? (stored as MonitorEvent[]) : [];
}

export interface RunningMonitor {
  readonly node: MonitorNode;
  readonly host: MonitorHost;
  readonly shell: MachineShell;
  /** Its Prometheus metrics port (undefined: none served). */
  readonly metricsPort: number | undefined;
  stop(): Promise<void>;
}

/** The monitor's events as Prometheus counters, one series per kind, role and action. */
export function monitorSamples(node: MonitorNode): MetricSample[] {
  return [...node.eventCounts.values()].map(({ kind, role, action, count }) => ({
    name: 'lfaas_monitor_events_total',
    help: 'Events of this monitor: decisions (decided), their outcomes (done, failed), and leases taken (lease), by role and action.',
    type: 'counter' as const,
    value: count,
    labels: { kind, role, action },
  }));
}

/** Starts a monitor machine on its own socket, with its member key, the KVS and a provider. */
export async function startMonitor(options: {
  readonly name: string;
  readonly host?: string;
  /** The host others reach the monitor at (default: `host`; docs/multi-host.md). */
  readonly advertise?: string;
  readonly keyPair: KeyPair | 'insecure';
  readonly shell: Pick<ShellOptions, 'membership' | 'tokens'>;
  readonly routing: readonly string[];
  /** Empty: discovered from the routing nodes and followed as they change (client/discovery.ts). */
  readonly schedulers: readonly string[];
  readonly policy: AutoscalePolicy;
  /** Announce this monitor to the routing nodes (discovery; `lfaas monitor` does, `lfaas up` need not). */
  readonly announce?: boolean;
  readonly provider: NodeProvider | undefined;
  readonly periodMs?: number;
  /** Serve Prometheus metrics on this port (0: any free one; undefined: none). */
  readonly metricsPort?: number;
  readonly log: (line: string) => void;
}): Promise<RunningMonitor> {
  const transport = await bindTransport({ host: options.host ?? '127.0.0.1', ...advertised(options), port: 0, keyPair: options.keyPair });
  const kvs = await KvsClient.connect({ routing: options.routing, ...(options.host === undefined ? {} : { host: options.host }), ...advertised(options), keyPair: options.keyPair, token: '', requestTimeoutMs: 2000 });
  // Without a list, the schedulers come from the routing nodes; the node reads this array at each
  // use, and the follower keeps it current in place.
  const discovered = await schedulersFor({ routing: options.routing, schedulers: options.schedulers, keyPair: options.keyPair, ...(options.host === undefined ? {} : { host: options.host }), ...advertised(options) });
  const schedulers = discovered.list;
  const announcer = options.announce === true ? new ServiceAnnouncer(transport, options.routing, 'monitor', transport.address) : undefined;
  const host = new MonitorHost(kvs, options.name, options.provider, options.log);
  const node = new MonitorNode({ address: transport.address, name: options.name, routing: options.routing, schedulers, policy: options.policy, ...(options.periodMs === undefined ? {} : { periodMs: options.periodMs }) });
  const shell = runMachine(node, transport, systemClock, { tasks: host, onError: (error) => options.log(JSON.stringify({ level: 40, name: 'monitor', msg: error.message })), ...options.shell });
  const metrics = options.metricsPort === undefined ? undefined : await startMetricsServer({ host: options.host ?? '127.0.0.1', port: options.metricsPort, samples: () => [...monitorSamples(node), ...wireSamples(wireCountersOf(shell, transport), { monitor: options.name })] });
  return {
    node,
    host,
    shell,
    metricsPort: metrics?.port,
    stop: async () => {
      announcer?.stop();
      await metrics?.close();
      await shell.stop();
      await kvs.close();
      await discovered.stop();
    },
  };
}

/**
 * `lfaas monitor`: a monitor as its own process, with the monitor member key. Without a node
 * provider (`lfaas up --autoscale` runs one beside the local provider) it takes the lease, reads
 * the cluster, and records what it decides (each decision then fails "no node provider"); with
 * `--provider kubernetes` it scales a StatefulSet and a Deployment (kubernetes-monitor.ts). Any
 * number may run: one acts at a time.
 */
export async function runMonitorProcess(options: { readonly routing: readonly string[]; readonly schedulers: readonly string[]; readonly host?: string; readonly advertise?: string; readonly periodMs: number; readonly metricsPort: number; readonly policy?: AutoscalePolicy; readonly keys?: string; readonly keyName?: string; readonly insecure?: boolean; readonly kubernetes?: KubernetesCliOptions }): Promise<void> {
  guardProcess('monitor');
  await startTracing({ role: 'monitor' });
  const security = roleSecurity('monitor', options);
  // The monitor's lines are JSON records ({ level, name, msg, ...fields }): into the role's log.
  const log = (line: string): void => {
    let record: { level?: unknown; msg?: unknown; [field: string]: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      record = { msg: line };
    }
    const { level, name: _name, msg, ...fields } = record;
    roleLog()[typeof level === 'number' && level >= 40 ? 'warn' : 'info'](fields, String(msg ?? ''));
  };
  // --provider kubernetes: its decisions scale the storage StatefulSet and the executor Deployment.
  const provider = options.kubernetes === undefined ? undefined : await kubernetesProviderFromCli(options.kubernetes, options.keys, log);
  const monitor = await startMonitor({ name: `monitor-${process.pid}-${Date.now().toString(36)}`, ...(options.host === undefined ? {} : { host: options.host }), ...advertised(options), announce: true, keyPair: security.keyPair, shell: security.shell, routing: options.routing, schedulers: options.schedulers, policy: options.policy ?? DEFAULT_POLICY, provider, periodMs: options.periodMs, ...(options.metricsPort < 0 ? {} : { metricsPort: options.metricsPort }), log });
  setLogNode(monitor.shell.machine.id);
  announceReady({ role: 'monitor', address: monitor.shell.machine.id, pid: process.pid, ...(monitor.metricsPort === undefined ? {} : { metricsPort: monitor.metricsPort }) });
  stopOnSignals(() => monitor.stop(), 'monitor');
}
