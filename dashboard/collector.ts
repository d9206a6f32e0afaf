/**
 * The dashboard's collector: every `periodMs` (1 s) it asks the cluster over the wire, as the
 * monitor does, and keeps the latest snapshot with short time series (the last ~5 minutes).
 *
 * One round asks, side by side and each bounded by `timeoutMs`:
 * - the routing node: `ClusterStatsRequest` (the ring's nodes, every shard's StatsReport);
 * - each scheduler: `ClusterStatsRequest` (its executors' ExecutorStatus with their FunctionLoad);
 *   both sent with the monitor's member key (only monitor members may ask);
 * - the registry, through the SDK with the admin token: `functions()` and `dags()`;
 * - the monitor's event log in the KVS (`lfaas/events`: autoscaling decisions and their outcomes).
 * Rounds never overlap (the next is scheduled when one ends). A part that fails leaves its
 * panel as it was and is named in `problems`. The collector also records events of its own:
 * a storage node or an executor that appeared or went away between two rounds.
 *
 * The addresses may be unknown at start (`lfaas up` starts the dashboard first, so it receives
 * every role's spans): `cluster()` is asked each round until it answers.
 */
import { LatticeFaas } from '../client/index.js';
import type { MonitorEvent } from '../monitor/index.js';
import { Rpc, bindTransport, systemClock } from '../protocol/index.js';
import type { KeyPair, PbTypes } from '../protocol/index.js';
import { clusterView } from './aggregate.js';
import type { ClusterView, DagRow, RegisteredFunction } from './aggregate.js';
import { FunctionSeries } from './series.js';
import type { SeriesView } from './series.js';

/** The monitor's event log (cli/monitor.ts writes it; only the lease holder does). */
export const EVENTS_KEY = 'lfaas/events';
/** Events in a snapshot at most (newest kept). */
export const EVENTS_SHOWN_MAX = 100;

export interface ClusterAddresses {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
}

export interface CollectorOptions {
  /** The cluster's addresses; undefined while not known yet (asked again each round). */
  readonly cluster: () => ClusterAddresses | undefined;
  /** The monitor member key the stats requests are sent with ('insecure': a plain cluster). */
  readonly memberKeyPair: KeyPair | 'insecure';
  /** The admin token the SDK client presents (registry and event log); undefined: none (insecure). */
  readonly adminToken: string | undefined;
  readonly periodMs?: number;
  readonly timeoutMs?: number;
}

/** An event on the page: the monitor's (autoscaling) or the dashboard's own (membership). */
export interface DashboardEvent {
  readonly atMs: number;
  /** `decided`, `done`, `failed`, `lease` (the monitor's), `joined`, `left` (seen by the dashboard). */
  readonly kind: string;
  readonly source: 'monitor' | 'dashboard';
  /** What it is about: `add executor`, `storage node-1`... */
  readonly what: string;
  readonly reason: string;
}

export interface ClusterSummary {
  readonly connected: boolean;
  readonly storageNodes: number;
  readonly shards: number;
  readonly keys: number;
  readonly bytes: number;
  readonly executors: number;
  readonly capacity: number;
  readonly warmRuntimes: number;
  readonly stemRuntimes: number;
  readonly functions: number;
  readonly dags: number;
  readonly callsPerSecond: number;
  readonly errorsPerSecond: number;
  readonly replication: number;
}

export interface Snapshot extends ClusterView {
  /** When the last round ended (0: none yet). */
  readonly atMs: number;
  readonly rounds: number;
  readonly summary: ClusterSummary;
  readonly dags: readonly DagRow[];
  readonly events: readonly DashboardEvent[];
  readonly series: SeriesView;
  /** What failed in the last round (empty: all answered). */
  readonly problems: readonly string[];
}

/** The storage nodes and executors that appeared (`joined`) or went away (`left`) between two views. */
export function membershipEvents(before: ClusterView, after: ClusterView, atMs: number): DashboardEvent[] {
  const events: DashboardEvent[] = [];
  const diff = (was: readonly string[], now: readonly string[], role: string): void => {
    const old = new Set(was);
    const current = new Set(now);
    for (const id of current) if (!old.has(id)) events.push({ atMs, kind: 'joined', source: 'dashboard', what: `${role} ${id}`, reason: 'first seen in this round' });
    for (const id of old) if (!current.has(id)) events.push({ atMs, kind: 'left', source: 'dashboard', what: `${role} ${id}`, reason: 'no longer listed (departed, failed or removed)' });
  };
  diff(before.ring.map((node) => node.id), after.ring.map((node) => node.id), 'storage');
  diff(before.executors.map((executor) => executor.address.replace(/#.*$/, '')), after.executors.map((executor) => executor.address.replace(/#.*$/, '')), 'executor');
  return events;
}

const EMPTY_VIEW: ClusterView = { ring: [], shards: [], executors: [], functions: [], replication: { default: 1, max: 1 } };

export class Collector {
  private rpc: Rpc | undefined;
  private faas: LatticeFaas | undefined;
  private view: ClusterView = EMPTY_VIEW;
  private dags: readonly DagRow[] = [];
  private monitorEvents: readonly MonitorEvent[] = [];
  private readonly ownEvents: DashboardEvent[] = [];
  private readonly series = new FunctionSeries();
  private problems: string[] = ['not asked yet'];
  private rounds = 0;
  private atMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly periodMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: CollectorOptions) {
    this.periodMs = Math.max(100, options.periodMs ?? 1000);
    this.timeoutMs = Math.max(100, options.timeoutMs ?? 1500);
  }

  /** Starts the rounds (the first at once). */
  start(): void {
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.round()
        .catch((error: unknown) => {
          this.problems = [`round failed: ${error instanceof Error ? error.message : String(error)}`];
        })
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(loop, this.periodMs);
        });
    };
    loop();
  }

  /** One round now (tests; `start` runs them on a timer). */
  async round(): Promise<void> {
    const cluster = this.options.cluster();
    if (cluster === undefined || cluster.routing.length === 0) {
      this.problems = ['the cluster\'s addresses are not known yet'];
      return;
    }
    const rpc = await this.rpcFor();
    const faas = await this.faasFor(cluster);
    const ask = (address: string): Promise<PbTypes.IClusterStats | undefined> => rpc.request(address, { clusterStatsRequest: {} }, { timeoutMs: this.timeoutMs }).then((reply) => reply.clusterStats ?? undefined);
    const bounded = <T>(promise: Promise<T>): Promise<T> =>
      Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs).unref())]);
    const [routing, functions, dags, events, ...schedulers] = await Promise.allSettled([
      ask(cluster.routing[0]!),
      bounded(faas.functions()),
      bounded(faas.dags()),
      bounded(faas.kvs.get(EVENTS_KEY)),
      ...cluster.schedulers.slice(0, 64).map((address) => ask(address)),
    ]);
    const problems: string[] = [];
    const value = <T>(outcome: PromiseSettledResult<T> | undefined, what: string): T | undefined => {
      if (outcome === undefined) return undefined;
      if (outcome.status === 'fulfilled') return outcome.value;
      problems.push(`${what}: ${outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason)}`.slice(0, 300));
      return undefined;
    };
    const routingStats = value(routing as PromiseSettledResult<PbTypes.IClusterStats | undefined>, 'routing node');
    const schedulerStats = schedulers.map((outcome, index) => value(outcome as PromiseSettledResult<PbTypes.IClusterStats | undefined>, `scheduler ${index}`));
    const registered = value(functions as PromiseSettledResult<Awaited<ReturnType<LatticeFaas['functions']>>>, 'functions');
    const dagList = value(dags as PromiseSettledResult<Awaited<ReturnType<LatticeFaas['dags']>>>, 'dags');
    const stored = value(events as PromiseSettledResult<Awaited<ReturnType<LatticeFaas['kvs']['get']>>>, 'event log');
    const now = Date.now();
    const before = this.view;
    const view = clusterView({
      atMs: now,
      routing: routingStats,
      schedulers: schedulerStats,
      functions: registered?.map((fn): RegisteredFunction => ({ name: fn.name, latest: fn.latest, memoryMb: fn.memoryMb })),
      dags: dagList?.map((dag) => ({ name: dag.name, functions: dag.functions, edges: dag.edges })),
    });
    // A part that did not answer keeps what it showed.
    this.view = {
      ring: routingStats === undefined ? before.ring : view.ring,
      shards: routingStats === undefined ? before.shards : view.shards,
      executors: schedulerStats.every((answer) => answer === undefined) && schedulerStats.length > 0 ? before.executors : view.executors,
      functions: view.functions,
      replication: routingStats === undefined ? before.replication : view.replication,
    };
    if (dagList !== undefined) this.dags = dagList.map((dag) => ({ name: dag.name, functions: dag.functions, edges: dag.edges }));
    if (stored !== undefined) {
      const log = stored === undefined || stored === null ? [] : stored.reveal();
      this.monitorEvents = Array.isArray(log) ? (log as MonitorEvent[]).slice(-EVENTS_SHOWN_MAX) : [];
    }
    if (this.rounds > 0) this.noteMembership(before, this.view, now);
    this.series.add(now, this.view.functions);
    this.problems = problems;
    this.rounds++;
    this.atMs = now;
  }

  /** Nodes and executors that appeared or went away since the round before. */
  private noteMembership(before: ClusterView, after: ClusterView, atMs: number): void {
    this.ownEvents.push(...membershipEvents(before, after, atMs));
    if (this.ownEvents.length > EVENTS_SHOWN_MAX) this.ownEvents.splice(0, this.ownEvents.length - EVENTS_SHOWN_MAX);
  }

  snapshot(): Snapshot {
    const view = this.view;
    const monitor: DashboardEvent[] = this.monitorEvents.map((event) => ({
      atMs: Number(event.atMs) || 0,
      kind: String(event.kind),
      source: 'monitor' as const,
      what: event.action === undefined ? String(event.kind) : `${event.action} ${event.role ?? ''}${event.node === undefined ? '' : ` ${event.node}`}`.trim(),
      reason: String(event.reason ?? '').slice(0, 300),
    }));
    const events = [...monitor, ...this.ownEvents].sort((a, b) => b.atMs - a.atMs).slice(0, EVENTS_SHOWN_MAX);
    return {
      ...view,
      atMs: this.atMs,
      rounds: this.rounds,
      summary: {
        connected: this.rounds > 0 && !this.problems.some((problem) => problem.startsWith('routing node')),
        storageNodes: view.ring.length,
        shards: view.shards.length,
        keys: view.shards.reduce((sum, shard) => sum + shard.keys, 0),
        bytes: view.shards.reduce((sum, shard) => sum + shard.bytes, 0),
        executors: view.executors.length,
        capacity: view.executors.reduce((sum, executor) => sum + executor.capacity, 0),
        warmRuntimes: view.executors.reduce((sum, executor) => sum + executor.warm.length, 0),
        stemRuntimes: view.executors.reduce((sum, executor) => sum + executor.stems, 0),
        functions: view.functions.length,
        dags: this.dags.length,
        callsPerSecond: view.functions.reduce((sum, fn) => sum + fn.callsPerSecond, 0),
        errorsPerSecond: view.functions.reduce((sum, fn) => sum + fn.errorsPerSecond, 0),
        replication: view.replication.default,
      },
      dags: this.dags,
      events,
      series: this.series.view(),
      problems: this.problems,
    };
  }

  private async rpcFor(): Promise<Rpc> {
    if (this.rpc === undefined) this.rpc = new Rpc(await bindTransport({ host: '127.0.0.1', port: 0, keyPair: this.options.memberKeyPair }), systemClock, { pendingMax: 256 });
    return this.rpc;
  }

  private async faasFor(cluster: ClusterAddresses): Promise<LatticeFaas> {
    if (this.faas === undefined) {
      this.faas = await LatticeFaas.connect({
        routing: cluster.routing,
        schedulers: cluster.schedulers,
        connectTimeoutMs: 0,
        requestTimeoutMs: this.timeoutMs,
        ...(this.options.memberKeyPair === 'insecure' ? { keyPair: 'insecure' as const } : {}),
        ...(this.options.adminToken === undefined ? {} : { token: this.options.adminToken }),
      });
    }
    return this.faas;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
    await this.faas?.close();
    if (this.rpc !== undefined) {
      await this.rpc.close();
      await this.rpc.transport.close();
    }
  }
}
