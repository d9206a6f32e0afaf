/**
 * The monitor: a sans-I/O machine that watches the cluster and scales it (policy.ts decides).
 *
 * Any number of monitors may run; one acts at a time. Every period (1 s) a monitor asks its host
 * to take or renew the lease (`lfaas/monitor/lease` in the KVS: a last-writer-wins record of the
 * holder and its expiry, read back after the write; the lease lasts three periods). The holder
 * then asks a routing node for the ring and every shard's latest statistics, and every scheduler
 * for its executors and their load (`clusterStatsRequest`), builds a snapshot (per storage node:
 * bytes, keys, requests per second, p99 latency since the last report; per executor: utilisation
 * and slots), and lets the policy decide. Each decision is an event (the host logs it, counts it
 * and appends it to the event log in the KVS, `lfaas events`), then a task for the node provider
 * (add or remove a node of a role); its outcome is an event too. One action per role at a time.
 * Pinning (pinning.ts): from the executors' function loads in the schedulers' answers, each
 * function's pin count; a change is an event, and the counts that differ from the default go to
 * every scheduler each period (`pinCounts`, valid for ten periods: a monitor that stops leaves
 * the schedulers' defaults).
 */
import { envelopeWith } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes } from '../protocol/index.js';
import { Autoscaler, DEFAULT_POLICY, p99OfHistogram } from './policy.js';
import type { Action, AutoscalePolicy, ClusterSnapshot, ExecutorNodeView, ScaledRole, StorageNodeView } from './policy.js';
import { DEFAULT_PIN_POLICY, Pinner } from './pinning.js';
import type { FunctionRateView } from './pinning.js';

/** An entry of the event log. */
export interface MonitorEvent {
  readonly atMs: number;
  /** `decided`, `done`, `failed`, `lease` (this monitor took the lease). */
  readonly kind: 'decided' | 'done' | 'failed' | 'lease';
  readonly monitor: string;
  readonly role?: ScaledRole;
  readonly action?: 'add' | 'remove' | 'replicate' | 'pin';
  /** The node concerned (the one removed, or the one added once done), the key replicated, or the function pinned. */
  readonly node?: string;
  readonly reason: string;
}

/** What the monitor asks its host to do. */
export type MonitorTask =
  | { readonly op: 'lease'; readonly holder: string; readonly leaseMs: number }
  | { readonly op: 'event'; readonly event: MonitorEvent }
  | { readonly op: 'provide'; readonly action: Action }
  /** A key's replication factor (nodes), set through a routing node. */
  | { readonly op: 'replicate'; readonly key: string; readonly replicas: number; readonly shards: number };

export interface MonitorOptions {
  readonly address: string;
  /** The lease holder's name (unique per monitor process). */
  readonly name: string;
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  readonly policy?: AutoscalePolicy;
  readonly periodMs?: number;
  /** How long a stats request may take before the snapshot is built without its answer. */
  readonly requestTimeoutMs?: number;
}

const TICK = 'tick';
const COLLECT = 'collect';

interface Pending {
  readonly kind: 'lease' | 'event' | { readonly action: Action };
}

export class MonitorNode implements Machine {
  readonly id: string;
  readonly autoscaler: Autoscaler;
  /** Function pin counts (pinning.ts). */
  readonly pinner: Pinner;
  readonly counters = { ticks: 0, leasesHeld: 0, snapshots: 0, decisions: 0, actionsDone: 0, actionsFailed: 0, statsMissing: 0, pinChanges: 0 };
  /** Whether this monitor held the lease at its last renewal. */
  leader = false;
  /** The last snapshot it decided on (tests, metrics). */
  lastSnapshot: ClusterSnapshot | undefined;
  private nowMs = 0;
  private nextToken = 1;
  private nextRequestId = 1;
  private readonly tasks = new Map<number, Pending>();
  private leasePending = false;
  /** Stats requests of the current collection, by request id. */
  private readonly asked = new Map<number, 'routing' | 'scheduler'>();
  private collecting = false;
  private routingAnswer: PbTypes.IClusterStats | undefined;
  private readonly schedulerAnswers: PbTypes.IClusterStats[] = [];
  /** Per shard (`node/shard`), its previous latency histogram (p99 is over the requests since). */
  private readonly previousCounts = new Map<string, readonly number[]>();
  /** Per shard (`node/shard`): its requests per second and its busy share, between two of its reports. */
  private readonly requestRates = new CounterRates();
  private readonly busyRates = new CounterRates();
  private readonly busy = new Set<ScaledRole>();
  private nextRouting = 0;

  constructor(private readonly options: MonitorOptions) {
    this.id = options.address;
    this.autoscaler = new Autoscaler(options.policy ?? DEFAULT_POLICY);
    this.pinner = new Pinner((options.policy ?? DEFAULT_POLICY).pins ?? DEFAULT_PIN_POLICY);
  }

  private get periodMs(): number {
    return this.options.periodMs ?? 1000;
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.kind) {
      case 'start':
        // The cluster gets a grace period before the first decision (its nodes are still joining).
        this.autoscaler.acted('executor', this.nowMs);
        this.autoscaler.acted('storage', this.nowMs);
        return [{ kind: 'timer', timer: TICK, delayMs: 0 }];
      case 'timer':
        if (input.timer === TICK) return [...this.tick(), { kind: 'timer', timer: TICK, delayMs: this.periodMs }];
        if (input.timer === COLLECT) return this.decide();
        return [];
      case 'taskDone':
        return this.onTaskDone(input.token, input.error, input.result);
      case 'persisted':
        return [];
      case 'message':
        return this.onMessage(input.envelope);
    }
  }

  private task(task: MonitorTask, pending: Pending): Effect {
    const token = this.nextToken++;
    this.tasks.set(token, pending);
    return { kind: 'task', token, task };
  }

  private tick(): Effect[] {
    this.counters.ticks++;
    if (this.leasePending) return [];
    this.leasePending = true;
    return [this.task({ op: 'lease', holder: this.options.name, leaseMs: 3 * this.periodMs }, { kind: 'lease' })];
  }

  private onTaskDone(token: number, error: Error | undefined, result: unknown): Effect[] {
    const pending = this.tasks.get(token);
    if (pending === undefined) return [];
    this.tasks.delete(token);
    if (pending.kind === 'lease') {
      this.leasePending = false;
      const wasLeader = this.leader;
      this.leader = error === undefined && result === this.options.name;
      if (!this.leader) return [];
      this.counters.leasesHeld++;
      const effects: Effect[] = wasLeader ? [] : [this.event({ kind: 'lease', reason: 'this monitor holds the lease and acts' })];
      return [...effects, ...this.collect()];
    }
    if (pending.kind === 'event') return [];
    const { action } = pending.kind;
    if (action.kind === 'replicate') {
      if (error !== undefined) this.counters.actionsFailed++;
      else this.counters.actionsDone++;
      return [this.event({ kind: error === undefined ? 'done' : 'failed', role: 'storage', action: 'replicate', node: action.target, reason: error === undefined ? `${action.replicas} replicas: ${action.reason}` : error.message })];
    }
    this.busy.delete(action.role);
    // The policy's grace period counts from when the action took effect.
    this.autoscaler.acted(action.role, this.nowMs);
    if (error !== undefined) {
      this.counters.actionsFailed++;
      return [this.event({ kind: 'failed', role: action.role, action: action.kind, ...(action.kind === 'remove' ? { node: action.target } : {}), reason: error.message })];
    }
    this.counters.actionsDone++;
    const node = action.kind === 'remove' ? action.target : typeof result === 'string' ? result : undefined;
    return [this.event({ kind: 'done', role: action.role, action: action.kind, ...(node === undefined ? {} : { node }), reason: action.reason })];
  }

  /** Events made so far, by kind, role and action (metrics: lfaas_monitor_events_total). */
  readonly eventCounts = new Map<string, { kind: string; role: string; action: string; count: number }>();

  private event(event: Omit<MonitorEvent, 'atMs' | 'monitor'>): Effect {
    const id = `${event.kind}|${event.role ?? ''}|${event.action ?? ''}`;
    const counted = this.eventCounts.get(id);
    if (counted === undefined) this.eventCounts.set(id, { kind: event.kind, role: event.role ?? '', action: event.action ?? '', count: 1 });
    else counted.count++;
    return this.task({ op: 'event', event: { atMs: Math.floor(this.nowMs), monitor: this.options.name, ...event } }, { kind: 'event' });
  }

  /** Asks a routing node and every scheduler for their view; decides when all answered or at the timeout. */
  private collect(): Effect[] {
    if (this.collecting) return [];
    this.collecting = true;
    this.asked.clear();
    this.routingAnswer = undefined;
    this.schedulerAnswers.length = 0;
    const effects: Effect[] = [];
    const ask = (to: string, kind: 'routing' | 'scheduler'): void => {
      const requestId = this.nextRequestId++;
      this.asked.set(requestId, kind);
      effects.push({ kind: 'send', to, envelope: envelopeWith({ clusterStatsRequest: {} }, { requestId, replyTo: this.options.address, sender: this.options.address }) });
    };
    const routing = this.options.routing;
    if (routing.length > 0) ask(routing[this.nextRouting++ % routing.length]!, 'routing');
    for (const scheduler of this.options.schedulers) ask(scheduler, 'scheduler');
    effects.push({ kind: 'timer', timer: COLLECT, delayMs: this.options.requestTimeoutMs ?? 800 });
    return effects;
  }

  private onMessage(envelope: Envelope): Effect[] {
    const kind = this.asked.get(Number(envelope.responseTo));
    if (kind === undefined || !this.collecting) return [];
    this.asked.delete(Number(envelope.responseTo));
    const stats = envelope.clusterStats;
    if (stats !== undefined && stats !== null) {
      if (kind === 'routing') this.routingAnswer = stats;
      else this.schedulerAnswers.push(stats);
    }
    if (this.asked.size > 0) return [];
    return [{ kind: 'cancelTimer', timer: COLLECT }, ...this.decide()];
  }

  private decide(): Effect[] {
    if (!this.collecting) return [];
    this.collecting = false;
    this.counters.statsMissing += this.asked.size;
    // Without the storage tier's view (or any scheduler's), nothing is decided for that role:
    // a silent node must not look like an idle one.
    const snapshot = this.snapshot();
    this.lastSnapshot = snapshot;
    this.counters.snapshots++;
    if (!this.leader) return [];
    // Only the roles whose view arrived and that have no action under way are judged.
    const judged = new Set<ScaledRole>();
    if (this.routingAnswer !== undefined && !this.busy.has('storage')) judged.add('storage');
    if (this.schedulerAnswers.length > 0 && !this.busy.has('executor')) judged.add('executor');
    const actions = this.autoscaler.decide(snapshot, this.nowMs, judged).filter((action) => {
      if (this.busy.has(action.role)) return false;
      if (action.role === 'storage' && this.routingAnswer === undefined) return false;
      if (action.role === 'executor' && this.schedulerAnswers.length === 0) return false;
      return true;
    });
    const effects: Effect[] = [];
    for (const action of actions) {
      this.counters.decisions++;
      this.busy.add(action.role);
      effects.push(this.event({ kind: 'decided', role: action.role, action: action.kind, ...(action.kind === 'remove' ? { node: action.target } : {}), reason: action.reason }));
      effects.push(this.task({ op: 'provide', action }, { kind: { action } }));
    }
    if (this.routingAnswer !== undefined) {
      for (const action of this.autoscaler.decideHotKeys(snapshot, this.nowMs)) {
        if (action.kind !== 'replicate') continue;
        this.counters.decisions++;
        effects.push(this.task({ op: 'replicate', key: action.target, replicas: action.replicas, shards: action.shards }, { kind: { action } }));
      }
    }
    effects.push(...this.pin(snapshot));
    return effects;
  }

  /**
   * Pin counts: decided on the executors' function loads when a scheduler answered (no view is
   * not a cold function), each change an event; then the counts that differ from the default go
   * to every scheduler, every period (one-way and idempotent: a lost one is replaced by the next).
   */
  private pin(snapshot: ClusterSnapshot): Effect[] {
    const effects: Effect[] = [];
    if (this.schedulerAnswers.length > 0) {
      for (const change of this.pinner.decide(snapshot.functions ?? [], snapshot.executors.length, this.nowMs)) {
        this.counters.pinChanges++;
        effects.push(this.event({ kind: 'decided', role: 'executor', action: 'pin', node: change.name, reason: change.reason }));
      }
    }
    const pinCounts = { counts: this.pinner.counts(), validMs: 10 * this.periodMs };
    for (const scheduler of this.options.schedulers) effects.push({ kind: 'send', to: scheduler, envelope: envelopeWith({ pinCounts }, { sender: this.options.address }) });
    return effects;
  }

  /**
   * Each function's calls over the cluster: per executor, the busiest of the schedulers' copies of
   * its report (they all hear the same executor), then summed over the executors; p50 weighted by
   * rate, p99 the worst.
   */
  private functionRates(): FunctionRateView[] {
    const perExecutor = new Map<string, Map<string, PbTypes.IFunctionLoad>>();
    for (const answer of this.schedulerAnswers) {
      for (const view of answer.executors ?? []) {
        let loads = perExecutor.get(view.address ?? '');
        if (loads === undefined) perExecutor.set(view.address ?? '', (loads = new Map()));
        for (const load of view.functions ?? []) {
          const known = loads.get(load.name ?? '');
          if (known === undefined || (load.rate ?? 0) > (known.rate ?? 0)) loads.set(load.name ?? '', load);
        }
      }
    }
    const sums = new Map<string, { rate: number; weighted: number; p99Ms: number }>();
    for (const loads of perExecutor.values()) {
      for (const [name, load] of loads) {
        if (name.length === 0) continue;
        const rate = Math.max(0, load.rate ?? 0);
        const sum = sums.get(name) ?? { rate: 0, weighted: 0, p99Ms: 0 };
        sum.rate += rate;
        sum.weighted += rate * Math.max(0, load.p50Ms ?? 0);
        sum.p99Ms = Math.max(sum.p99Ms, load.p99Ms ?? 0);
        sums.set(name, sum);
      }
    }
    return [...sums].map(([name, sum]) => ({ name, rate: sum.rate, p50Ms: sum.rate > 0 ? sum.weighted / sum.rate : 0, p99Ms: sum.p99Ms }));
  }

  private snapshot(): ClusterSnapshot {
    const routing = this.routingAnswer;
    const alive = new Set((routing?.nodes ?? []).filter((node) => !node.departed).map((node) => node.id ?? ''));
    const storage = new Map<string, { id: string; bytes: number; keys: number; rps: number; recentRps?: number; busy?: number; p99Ms: number | undefined }>();
    for (const id of alive) storage.set(id, { id, bytes: 0, keys: 0, rps: 0, p99Ms: undefined });
    for (const report of routing?.shards ?? []) {
      const node = storage.get(report.nodeId ?? '');
      if (node === undefined) continue;
      node.bytes += Number(report.occupancyBytes ?? 0);
      node.keys += Number(report.keyCount ?? 0);
      node.rps += report.requestsPerSecond ?? 0;
      const shardKey = `${report.nodeId}/${report.shard}`;
      const counts = (report.latency?.counts ?? []).map(Number);
      const before = this.previousCounts.get(shardKey);
      this.previousCounts.set(shardKey, counts);
      const recent = before === undefined || before.length !== counts.length ? counts : counts.map((count, i) => Math.max(0, count - before[i]!));
      const p99 = p99OfHistogram(report.latency?.boundsUs ?? [], recent);
      if (p99 !== undefined) node.p99Ms = Math.max(node.p99Ms ?? 0, p99);
      const atMs = Number(report.sentAtMs ?? 0);
      // Its histogram counts every request it served.
      const recentRps = this.requestRates.perSecond(shardKey, counts.reduce((sum, count) => sum + count, 0), atMs);
      if (recentRps !== undefined) node.recentRps = (node.recentRps ?? 0) + recentRps;
      const busyUsPerSecond = this.busyRates.perSecond(shardKey, Number(report.busyUs ?? 0), atMs);
      if (busyUsPerSecond !== undefined) node.busy = (node.busy ?? 0) + Math.min(1, busyUsPerSecond / 1e6);
    }
    const executors = new Map<string, ExecutorNodeView>();
    for (const answer of this.schedulerAnswers) {
      for (const view of answer.executors ?? []) {
        const address = view.address ?? '';
        const known = executors.get(address);
        // Schedulers see the same executor: the busiest view counts. The monitor scales on demand
        // (calls that wanted to run over the executor's last period, refused ones included).
        const utilisation = view.demand || view.utilisation || 0;
        if (known === undefined || utilisation > known.utilisation) executors.set(address, { address, utilisation, capacity: view.capacity ?? 1 });
      }
    }
    // A key's rate is the sum over the shards that serve it (each replica reports its own share).
    const hot = new Map<string, number>();
    for (const report of routing?.shards ?? []) {
      if (!alive.has(report.nodeId ?? '')) continue;
      for (const access of report.hotKeys ?? []) hot.set(access.key ?? '', (hot.get(access.key ?? '') ?? 0) + (access.rate ?? 0));
    }
    return {
      storage: [...storage.values()] as StorageNodeView[],
      executors: [...executors.values()],
      replicationMax: routing?.replicationMax ?? 1,
      replicationDefault: routing?.replicationDefault || 1,
      shardsPerNode: Math.min(...(routing?.nodes ?? []).filter((node) => !node.departed).map((node) => Math.max(1, node.shardAddresses?.length ?? 1)), 64),
      hotKeys: [...hot].filter(([key]) => key.length > 0).map(([key, rate]) => ({ key, rate })),
      functions: this.functionRates(),
    };
  }
}

/**
 * Per source, the rate of a counter that only grows, between two of its reports: per second
 * between the report seen before and this one; the same rate again for the same report seen
 * twice; undefined before two reports, or after the counter went back (a restarted source).
 */
class CounterRates {
  private readonly last = new Map<string, { value: number; atMs: number; perSecond: number | undefined }>();

  perSecond(source: string, value: number, atMs: number): number | undefined {
    const before = this.last.get(source);
    if (before !== undefined && atMs === before.atMs) return before.perSecond;
    const perSecond = before !== undefined && atMs > before.atMs && value >= before.value ? ((value - before.value) * 1000) / (atMs - before.atMs) : undefined;
    // Bounded: sources come and go (shards of removed nodes).
    if (before === undefined && this.last.size >= 10_000) this.last.clear();
    this.last.set(source, { value, atMs, perSecond });
    return perSecond;
  }
}
