/**
 * A shard's cache subscriptions: which subscribers (executor caches) want the new merged values of
 * which keys, each until its lease ends. Bounded in subscriptions; a subscribe that would pass the
 * bound changes nothing. The shard decides what to send; this table only keeps the leases.
 */

/** The subscribe a replica should get on behalf of one subscriber, with its shortest remaining lease. */
export interface ForwardedSubscription {
  readonly subscriber: string;
  readonly keys: string[];
  leaseMs: number;
}

export class SubscriptionTable {
  private readonly byKey = new Map<string, Map<string, number>>();
  private total = 0;

  constructor(private readonly subscriptionsMax: number) {}

  /** Subscriptions held (key, subscriber pairs). */
  get count(): number {
    return this.total;
  }

  /**
   * Subscribes `subscriber` to `keys` until `expiresAtMs` (renewing those it has). Returns false,
   * changing nothing, when the new pairs would pass the bound.
   */
  add(keys: readonly string[], subscriber: string, expiresAtMs: number): boolean {
    const fresh = keys.filter((key) => !this.byKey.get(key)?.has(subscriber)).length;
    if (this.total + fresh > this.subscriptionsMax) return false;
    for (const key of keys) {
      let subscribers = this.byKey.get(key);
      if (subscribers === undefined) this.byKey.set(key, (subscribers = new Map()));
      if (!subscribers.has(subscriber)) this.total++;
      subscribers.set(subscriber, expiresAtMs);
    }
    return true;
  }

  remove(key: string, subscriber: string): void {
    const subscribers = this.byKey.get(key);
    if (subscribers?.delete(subscriber)) this.total--;
    if (subscribers?.size === 0) this.byKey.delete(key);
  }

  /** Drops every subscription whose lease ended at or before `nowMs`. */
  expire(nowMs: number): void {
    for (const [key, subscribers] of this.byKey) {
      for (const [subscriber, expiresAtMs] of subscribers) if (expiresAtMs <= nowMs) this.remove(key, subscriber);
    }
  }

  /** The subscribers of `key` (and their lease ends), if any. */
  subscribersOf(key: string): ReadonlyMap<string, number> | undefined {
    return this.byKey.get(key);
  }

  /** Every key with a subscriber. */
  keys(): IterableIterator<string> {
    return this.byKey.keys();
  }

  /** The subscriptions of `keys`, grouped by subscriber, with the shortest lease left of each group (at least 1 ms). */
  forwardable(keys: readonly string[], nowMs: number): ForwardedSubscription[] {
    const bySubscriber = new Map<string, ForwardedSubscription>();
    for (const key of keys) {
      for (const [subscriber, expiresAtMs] of this.byKey.get(key) ?? []) {
        const leaseMs = Math.max(1, Math.round(expiresAtMs - nowMs));
        let group = bySubscriber.get(subscriber);
        if (group === undefined) bySubscriber.set(subscriber, (group = { subscriber, keys: [], leaseMs }));
        group.keys.push(key);
        group.leaseMs = Math.min(group.leaseMs, leaseMs);
      }
    }
    return [...bySubscriber.values()];
  }
}
