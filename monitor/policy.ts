/**
 * The monitor's policies: pure decisions over a snapshot of the cluster, with hysteresis (a
 * condition must hold for a while before it acts: in at least 3 of 4 looks over the window and in
 * the latest, so one dip between two waves of load is not a lapse) and a grace period after each
 * action (the cluster settles: a new node takes keys, a new executor warms up, before it is judged
 * again; what it shows meanwhile does not count).
 *
 * Executors (per scheduler view, merged):
 * - add some when their average demand (calls per runtime slot that wanted to run over the
 *   executor's last report period: the most held at once, plus those refused for want of room) stays at
 *   or above `scaleUpUtilisation` (0.7) for `upSustainMs` (3 s), below `max`: as many as bring the
 *   average back to the threshold at the load seen (at least one, at most up to `max`);
 * - remove the least loaded (on a tie, the one that joined last) when it stays at or below
 *   `scaleDownUtilisation` (0.2) for `downSustainMs` (15 s), above `min`.
 * Storage nodes (from every shard's report; a node's requests per second are those it served
 * since the monitor's previous look, `recentRps`, or the shards' decaying rate before there is one):
 * - add one when a node holds more than `memoryHighBytes` (64 MiB) on average, or the latency
 *   objective (p99 <= `latencyObjectiveMs`, 10 ms) is missed at high utilisation: while shards
 *   serve at least `busyRps` (1,000 requests/s each) or the node's shards are busy (handling
 *   inputs) at least `scaleUpUtilisation` (0.7) of the time, for `upSustainMs`, below `max`;
 * - with `capacityRps` known (the requests per second one node serves at full load; 0 by default:
 *   unknown, hardware decides it), also add when the nodes' average utilisation (requests served
 *   per second over `capacityRps`) stays at or above `scaleUpUtilisation` (0.7): as many as bring
 *   it back to the threshold at the load seen, like executors (a saturated node serves at most its
 *   capacity, so each step grows the tier by at most 1 / threshold);
 * - remove the emptiest when requests stay under `idleRps` (50/s per node) and memory under half
 *   the threshold for `downSustainMs` (30 s), above `min` and above the largest replication
 *   factor in use (a key must keep its replicas), and (with `capacityRps`) only if the nodes left
 *   would stay under `scaleUpUtilisation` (a removal must not call for an addition).
 * Functions (monitor/pinning.ts, `pins`): each pinned on executors in proportion to its call
 * rate, ceil(rate / `perExecutorRate` (50 calls/s)) between `base` (2, the schedulers' default)
 * and the executors known; a count rises once that held for `upSustainMs` (2 s), falls once a
 * lower one would do for `downSustainMs` (30 s), `graceMs` (5 s) after each change; a function
 * not called for `idleMs` (0: never) gets count 0.
 * Every decision becomes an event (monitor-node.ts logs, counts and stores it).
 */
import { DEFAULT_PIN_POLICY } from './pinning.js';
import type { FunctionRateView, PinPolicy } from './pinning.js';

export type ScaledRole = 'executor' | 'storage';

export interface RolePolicy {
  readonly min: number;
  readonly max: number;
  readonly upSustainMs: number;
  readonly downSustainMs: number;
  /** After an action on this role, how long nothing more is decided for it. */
  readonly graceMs: number;
}

export interface ExecutorPolicy extends RolePolicy {
  readonly scaleUpUtilisation: number;
  readonly scaleDownUtilisation: number;
}

export interface StoragePolicy extends RolePolicy {
  readonly memoryHighBytes: number;
  readonly latencyObjectiveMs: number;
  readonly busyRps: number;
  readonly idleRps: number;
  /** Requests per second one storage node serves at full load (0: not known, no utilisation condition). */
  readonly capacityRps: number;
  /** Add storage nodes when their average utilisation (served / capacityRps) stays at or above this. */
  readonly scaleUpUtilisation: number;
}

/** Hot keys: replicated on more nodes while their access rate is far above the mean. */
export interface HotKeyPolicy {
  /** A key is hot at this many times the mean per-key rate... */
  readonly hotFactor: number;
  /** ...and at least this many requests per second. */
  readonly hotRateMin: number;
  /** Nodes a hot key is replicated on (at most the nodes there are). */
  readonly replicas: number;
  /** A raised key cools once its rate stays under half the hot threshold this long. */
  readonly coolSustainMs: number;
  /** Keys raised at once, at most. */
  readonly keysMax: number;
}

export interface AutoscalePolicy {
  readonly executor: ExecutorPolicy;
  readonly storage: StoragePolicy;
  readonly hotKeys: HotKeyPolicy;
  /** Function pinning (monitor/pinning.ts); DEFAULT_PIN_POLICY when absent. */
  readonly pins?: PinPolicy;
}

export const DEFAULT_POLICY: AutoscalePolicy = {
  executor: { min: 1, max: 8, upSustainMs: 3000, downSustainMs: 15_000, graceMs: 10_000, scaleUpUtilisation: 0.7, scaleDownUtilisation: 0.2 },
  storage: { min: 1, max: 16, upSustainMs: 3000, downSustainMs: 30_000, graceMs: 15_000, memoryHighBytes: 64 * 1024 * 1024, latencyObjectiveMs: 10, busyRps: 1000, idleRps: 50, capacityRps: 0, scaleUpUtilisation: 0.7 },
  hotKeys: { hotFactor: 20, hotRateMin: 100, replicas: 3, coolSustainMs: 30_000, keysMax: 256 },
  pins: DEFAULT_PIN_POLICY,
};

/** The policy with some fields replaced (a command line's flags). */
export function policyWith(overrides: { readonly executor?: Partial<ExecutorPolicy>; readonly storage?: Partial<StoragePolicy>; readonly hotKeys?: Partial<HotKeyPolicy>; readonly pins?: Partial<PinPolicy> }, base: AutoscalePolicy = DEFAULT_POLICY): AutoscalePolicy {
  return { executor: { ...base.executor, ...overrides.executor }, storage: { ...base.storage, ...overrides.storage }, hotKeys: { ...base.hotKeys, ...overrides.hotKeys }, pins: { ...(base.pins ?? DEFAULT_PIN_POLICY), ...overrides.pins } };
}

export interface StorageNodeView {
  readonly id: string;
  readonly bytes: number;
  readonly keys: number;
  /** Its shards' decaying request rate (requests per second, a half-life of 10 s). */
  readonly rps: number;
  /** Requests per second served since the monitor's previous look (undefined until it has one). */
  readonly recentRps?: number;
  /** The share of time its shards spent handling inputs since their previous reports, summed (1: one core's worth; undefined until known). */
  readonly busy?: number;
  /** The worst p99 of its shards, in ms (undefined: no requests measured). */
  readonly p99Ms: number | undefined;
}

export interface ExecutorNodeView {
  readonly address: string;
  readonly utilisation: number;
  readonly capacity: number;
}

export interface ClusterSnapshot {
  readonly storage: readonly StorageNodeView[];
  readonly executors: readonly ExecutorNodeView[];
  /** The largest replication factor in use: never fewer storage nodes than this. */
  readonly replicationMax: number;
  /** The cluster's default replication factor (what a cooled key goes back to). */
  readonly replicationDefault?: number;
  /** The fewest shards an alive storage node has (a hot key is replicated over that many shards in each of its nodes). */
  readonly shardsPerNode?: number;
  /** The hottest keys the shards reported, with their decaying rates (requests per second). */
  readonly hotKeys?: readonly { readonly key: string; readonly rate: number }[];
  /** Each function's call rate and latency, summed over the executors' reports. */
  readonly functions?: readonly FunctionRateView[];
}

export type Action =
  /** `count` nodes at once (1 unless the policy sized a step: executors in proportion to the load). */
  | { readonly kind: 'add'; readonly role: ScaledRole; readonly reason: string; readonly count?: number }
  | { readonly kind: 'remove'; readonly role: ScaledRole; readonly target: string; readonly reason: string }
  /** A key's replication factor (nodes), raised for a hot key or lowered back once it cooled. */
  | { readonly kind: 'replicate'; readonly role: 'storage'; readonly target: string; readonly replicas: number; readonly shards: number; readonly reason: string };

/** What the policy remembers between decisions, per role. */
interface RoleState {
  /** What each look since the grace period saw: whether the up and the down conditions held. */
  samples: { atMs: number; up: boolean; down: boolean }[];
  lastActionMs: number;
}

/** Every scaled role. */
const ALL_ROLES: ReadonlySet<ScaledRole> = new Set<ScaledRole>(['executor', 'storage']);

/** A condition holds over a window when it held in this share of the looks in it (a dip is not a lapse). */
const HELD_SHARE = 0.75;
const SAMPLES_MAX = 10_000;

export class Autoscaler {
  private readonly state: Record<ScaledRole, RoleState> = {
    executor: { samples: [], lastActionMs: -Infinity },
    storage: { samples: [], lastActionMs: -Infinity },
  };

  /** Keys whose factor this autoscaler raised, and since when each has been cool. */
  private readonly raised = new Map<string, { coolSinceMs: number | undefined }>();

  constructor(readonly policy: AutoscalePolicy = DEFAULT_POLICY) {}

  /** Keys raised now (tests, metrics). */
  raisedKeys(): string[] {
    return [...this.raised.keys()];
  }

  /**
   * Hot keys: a key reported at `hotFactor` times the mean per-key rate and at least `hotRateMin`
   * requests/s is replicated on `replicas` nodes (clients spread their reads over a key's
   * replicas); once its rate stays under half that threshold for `coolSustainMs`, it goes back to
   * the default factor. These are not node actions: no grace period, any number at once.
   */
  decideHotKeys(snapshot: ClusterSnapshot, nowMs: number): Action[] {
    const policy = this.policy.hotKeys;
    const nodes = snapshot.storage.length;
    const keys = snapshot.storage.reduce((sum, node) => sum + node.keys, 0);
    const rps = snapshot.storage.reduce((sum, node) => sum + node.rps, 0);
    if (nodes === 0) return [];
    const mean = keys > 0 ? rps / keys : 0;
    const threshold = Math.max(policy.hotRateMin, policy.hotFactor * mean);
    const replicas = Math.min(policy.replicas, nodes);
    const fallback = snapshot.replicationDefault ?? 1;
    const rates = new Map((snapshot.hotKeys ?? []).map((hot) => [hot.key, hot.rate]));
    const actions: Action[] = [];
    for (const [key, rate] of rates) {
      if (rate < threshold || this.raised.has(key) || this.raised.size >= policy.keysMax || replicas <= fallback) continue;
      this.raised.set(key, { coolSinceMs: undefined });
      const shards = Math.max(1, snapshot.shardsPerNode ?? 1);
      actions.push({ kind: 'replicate', role: 'storage', target: key, replicas, shards, reason: `hot: ${rate.toFixed(0)} requests/s >= ${threshold.toFixed(0)} (${policy.hotFactor}x the mean ${mean.toFixed(2)} per key)${shards > 1 ? `; on ${shards} shards in each node` : ''}` });
    }
    for (const [key, state] of this.raised) {
      const rate = rates.get(key) ?? 0;
      if (rate >= threshold / 2) {
        state.coolSinceMs = undefined;
        continue;
      }
      state.coolSinceMs ??= nowMs;
      if (nowMs - state.coolSinceMs < policy.coolSustainMs) continue;
      this.raised.delete(key);
      actions.push({ kind: 'replicate', role: 'storage', target: key, replicas: fallback, shards: 1, reason: `cooled: ${rate.toFixed(0)} requests/s < ${(threshold / 2).toFixed(0)} for ${policy.coolSustainMs} ms` });
    }
    return actions;
  }

  /**
   * The actions to take now (at most one node action per role), for the roles in `judged` only:
   * a role whose view did not arrive, or whose last action is still under way, is not looked at
   * (no sample, no decision: an empty view would read as "fewer than the minimum" and restart
   * its grace period).
   */
  decide(snapshot: ClusterSnapshot, nowMs: number, judged: ReadonlySet<ScaledRole> = ALL_ROLES): Action[] {
    const actions: Action[] = [];
    const executor = judged.has('executor') ? this.decideExecutors(snapshot.executors, nowMs) : undefined;
    if (executor !== undefined) actions.push(executor);
    const storage = judged.has('storage') ? this.decideStorage(snapshot, nowMs) : undefined;
    if (storage !== undefined) actions.push(storage);
    for (const action of actions) this.acted(action.role, nowMs);
    return actions;
  }

  /** An action was taken for `role` (also one decided elsewhere): the grace period starts. */
  acted(role: ScaledRole, nowMs: number): void {
    const state = this.state[role];
    state.lastActionMs = nowMs;
    state.samples = [];
  }

  private held(role: ScaledRole, up: boolean, down: boolean, nowMs: number): 'up' | 'down' | undefined {
    const state = this.state[role];
    const policy = this.policy[role];
    // In the grace period the cluster is settling: what it shows then does not count.
    if (nowMs - state.lastActionMs < policy.graceMs) {
      state.samples = [];
      return undefined;
    }
    state.samples.push({ atMs: nowMs, up, down });
    const keepMs = Math.max(policy.upSustainMs, policy.downSustainMs);
    while (state.samples.length > SAMPLES_MAX || (state.samples.length > 1 && state.samples[1]!.atMs <= nowMs - keepMs)) state.samples.shift();
    // Held for `sustainMs`: looked at for that long, holding now, and in most looks of the window.
    const heldFor = (which: 'up' | 'down', sustainMs: number): boolean => {
      if (!state.samples.at(-1)![which] || state.samples[0]!.atMs > nowMs - sustainMs) return false;
      const window = state.samples.filter((sample) => sample.atMs >= nowMs - sustainMs);
      return window.filter((sample) => sample[which]).length >= HELD_SHARE * window.length;
    };
    if (heldFor('up', policy.upSustainMs)) return 'up';
    if (heldFor('down', policy.downSustainMs)) return 'down';
    return undefined;
  }

  /** Fewer nodes than the minimum (one died, or none started yet): one more, once the grace period is over. */
  private belowMinimum(role: ScaledRole, count: number, nowMs: number): Action | undefined {
    if (nowMs - this.state[role].lastActionMs < this.policy[role].graceMs) return undefined;
    return { kind: 'add', role, reason: `${count} ${role === 'executor' ? 'executors' : 'storage nodes'}, fewer than the minimum ${this.policy[role].min}` };
  }

  private decideExecutors(executors: readonly ExecutorNodeView[], nowMs: number): Action | undefined {
    const policy = this.policy.executor;
    const count = executors.length;
    if (count < policy.min) return this.belowMinimum('executor', count, nowMs);
    const slots = executors.reduce((sum, view) => sum + Math.max(1, view.capacity), 0);
    // Average per slot, weighted by slots: a big executor counts for more.
    const average = executors.reduce((sum, view) => sum + view.utilisation * Math.max(1, view.capacity), 0) / slots;
    const verdict = this.held('executor', average >= policy.scaleUpUtilisation && count < policy.max, average <= policy.scaleDownUtilisation && count > policy.min, nowMs);
    if (verdict === 'up') {
      // In proportion to the load: enough executors for the average to fall back to the
      // threshold (at least one more, at most the maximum).
      const wanted = Math.min(policy.max, Math.max(count + 1, Math.ceil((count * average) / policy.scaleUpUtilisation)));
      return { kind: 'add', role: 'executor', count: wanted - count, reason: `average executor demand ${average.toFixed(2)} >= ${policy.scaleUpUtilisation} for ${policy.upSustainMs} ms (${count} executors; ${wanted} wanted)` };
    }
    if (verdict === 'down') {
      // The least loaded; on a tie the one that joined last (last in, first out).
      let least = executors[0]!;
      for (const view of executors) if (view.utilisation <= least.utilisation) least = view;
      return { kind: 'remove', role: 'executor', target: least.address, reason: `average executor demand ${average.toFixed(2)} <= ${policy.scaleDownUtilisation} for ${policy.downSustainMs} ms (${count} executors)` };
    }
    return undefined;
  }

  private decideStorage(snapshot: ClusterSnapshot, nowMs: number): Action | undefined {
    const policy = this.policy.storage;
    const nodes = snapshot.storage;
    const count = nodes.length;
    if (count < policy.min) return this.belowMinimum('storage', count, nowMs);
    const bytes = nodes.reduce((sum, node) => sum + node.bytes, 0) / count;
    const served = (node: StorageNodeView): number => node.recentRps ?? node.rps;
    const rps = nodes.reduce((sum, node) => sum + served(node), 0);
    const slow = nodes.filter((node) => node.p99Ms !== undefined && node.p99Ms > policy.latencyObjectiveMs && (served(node) >= policy.busyRps || (node.busy ?? 0) >= policy.scaleUpUtilisation));
    // Utilisation: what the nodes served over what they can serve (0 when the capacity is unknown).
    const utilisation = policy.capacityRps > 0 ? rps / (count * policy.capacityRps) : 0;
    const saturated = policy.capacityRps > 0 && utilisation >= policy.scaleUpUtilisation;
    const up = count < policy.max && (bytes > policy.memoryHighBytes || slow.length > 0 || saturated);
    const floor = Math.max(policy.min, snapshot.replicationMax);
    const leftSaturated = policy.capacityRps > 0 && rps / ((count - 1) * policy.capacityRps) >= policy.scaleUpUtilisation;
    const down = count > floor && rps / count < policy.idleRps && bytes < policy.memoryHighBytes / 2 && !leftSaturated;
    const verdict = this.held('storage', up, down, nowMs);
    if (verdict === 'up') {
      const why = bytes > policy.memoryHighBytes ? `memory ${Math.round(bytes / 1024)} KiB per node > ${Math.round(policy.memoryHighBytes / 1024)} KiB` : slow.length > 0 ? `p99 over ${policy.latencyObjectiveMs} ms at high utilisation on ${slow.map((node) => `${node.id} (${Math.round(served(node))} requests/s, busy ${((node.busy ?? 0) * 100).toFixed(0)}%)`).join(', ')}` : `average utilisation ${utilisation.toFixed(2)} >= ${policy.scaleUpUtilisation} (${Math.round(rps)} requests/s on nodes of ${policy.capacityRps})`;
      // Saturated: as many as bring the utilisation back to the threshold at the load seen (at least one, at most up to max).
      const wanted = saturated ? Math.min(policy.max, Math.max(count + 1, Math.ceil((count * utilisation) / policy.scaleUpUtilisation))) : count + 1;
      return { kind: 'add', role: 'storage', ...(wanted - count > 1 ? { count: wanted - count } : {}), reason: `${why} for ${policy.upSustainMs} ms (${count} nodes${wanted - count > 1 ? `; ${wanted} wanted` : ''})` };
    }
    if (verdict === 'down') {
      let emptiest = nodes[0]!;
      for (const node of nodes) if (node.bytes <= emptiest.bytes) emptiest = node;
      return { kind: 'remove', role: 'storage', target: emptiest.id, reason: `${Math.round(rps / count)} requests/s per node < ${policy.idleRps} and memory under half the threshold for ${policy.downSustainMs} ms (${count} nodes, at least ${floor} kept)` };
    }
    return undefined;
  }
}

/** The p99 (ms) of a latency histogram (bounds in microseconds, counts at or below each); undefined when empty. */
export function p99OfHistogram(boundsUs: readonly number[], counts: readonly number[]): number | undefined {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return undefined;
  const wanted = Math.ceil(total * 0.99);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= wanted) return (boundsUs[i] ?? boundsUs[boundsUs.length - 1] ?? 0) / 1000;
  }
  return (boundsUs[boundsUs.length - 1] ?? 0) / 1000;
}
