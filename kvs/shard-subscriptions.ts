/**
 * A shard's subscriptions: a subscriber (an executor cache) registers keys with a lease; every new
 * merged value of such a key is pushed to it, batched; on a ring change, and with a hand-off, the
 * subscriptions are forwarded to the key's new replicas, so they survive migrations.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { envelopeWith } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import type { ShardState } from './shard-state.js';
import { SubscriptionTable } from './subscription-table.js';

export class ShardSubscriptions {
  private readonly table: SubscriptionTable;
  /** Per subscriber, the keys whose new values wait for the next push round. */
  private readonly pending = new Map<string, Set<string>>();

  constructor(
    private readonly state: ShardState,
    subscriptionsMax: number,
  ) {
    this.table = new SubscriptionTable(subscriptionsMax);
    state.onChange = (key) => this.changed(key);
  }

  /** Whether new values wait to be pushed. */
  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Registers a subscription; the answer's body (the current values), or KVS_BUSY when the table is full. */
  subscribe(subscribe: PbTypes.Subscribe): PbTypes.IEnvelope {
    const { settings, nowMs } = this.state;
    const leaseMs = Math.min(settings.leaseMaxMs, subscribe.leaseMs > 0 ? subscribe.leaseMs : 10_000);
    if (!this.table.add(subscribe.keys, subscribe.subscriber, nowMs + leaseMs)) {
      this.state.counters.busy++;
      throw new LfaasError(ErrorCode.KVS_BUSY, `${this.table.count} subscriptions; no room for ${subscribe.keys.length} more`);
    }
    // The answer carries the current values, so a cache starts fresh.
    const tuples = subscribe.keys.filter((key) => this.state.get(key)?.payload !== undefined).map((key) => this.state.tupleOf(key));
    return { kvsResponse: { tuples } };
  }

  unsubscribe(unsubscribe: PbTypes.Unsubscribe): void {
    for (const key of unsubscribe.keys) this.table.remove(key, unsubscribe.subscriber);
  }

  expire(): void {
    this.table.expire(this.state.nowMs);
  }

  /** Every subscription, forwarded to its key's other current replicas (after a ring change). */
  forwardAll(): Effect[] {
    const effects: Effect[] = [];
    const byReplica = new Map<string, string[]>();
    for (const key of this.table.keys()) {
      for (const replica of this.state.ring.nodeCount === 0 ? [] : this.state.replicasOf(key)) {
        if (replica === this.state.address) continue;
        let keys = byReplica.get(replica);
        if (keys === undefined) byReplica.set(replica, (keys = []));
        keys.push(key);
      }
    }
    for (const [replica, keys] of byReplica) effects.push(...this.forward(keys, replica));
    return effects;
  }

  /** Subscribe messages to `replica` on behalf of the subscribers of `keys`, with their remaining leases. */
  forward(keys: readonly string[], replica: string): Effect[] {
    return this.table.forwardable(keys, this.state.nowMs).map(({ subscriber, keys: forwarded, leaseMs }) => ({
      kind: 'send' as const,
      to: replica,
      envelope: envelopeWith({ subscribe: { subscriber, keys: forwarded, leaseMs } }, { sender: this.state.address }),
    }));
  }

  /** Pushes the pending new values, batched per subscriber. */
  push(): Effect[] {
    const effects: Effect[] = [];
    for (const [subscriber, keys] of this.pending) {
      const list = [...keys];
      for (let start = 0; start < list.length; start += this.state.settings.batchKeysMax) {
        this.state.counters.pushed++;
        const tuples = list.slice(start, start + this.state.settings.batchKeysMax).map((key) => this.state.tupleOf(key));
        effects.push({ kind: 'send', to: subscriber, envelope: envelopeWith({ keyUpdate: { tuples } }, { sender: this.state.address }) });
      }
    }
    this.pending.clear();
    return effects;
  }

  private changed(key: string): void {
    const subscribers = this.table.subscribersOf(key);
    if (subscribers === undefined) return;
    for (const subscriber of subscribers.keys()) {
      let keys = this.pending.get(subscriber);
      if (keys === undefined) this.pending.set(subscriber, (keys = new Set()));
      keys.add(key);
    }
  }
}
