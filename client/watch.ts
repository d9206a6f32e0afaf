/**
 * Async iteration over a KVS key's values (`kvs.watch(key)`, `faas.watch(key)`), backed by the
 * client's subscriptions: the key's value now (if it has one), then each value pushed after.
 *
 * Bounded: values that arrive while the loop body runs are not queued one by one; they are merged
 * into one pending value (values are lattices: the merge is what the KVS would store), so a slow
 * consumer sees the latest state, never an unbounded backlog. A value that adds nothing to the last
 * one yielded (the same value pushed twice, a stale one) is not yielded. A value of another
 * lattice type than the pending one replaces it (the key was deleted and written again). A
 * deletion is not yielded.
 *
 * The iteration ends (the subscription is closed) on `break`/`return`, when `signal` aborts, and
 * when the client closes.
 *
 * @example
 * ```ts
 * const stop = new AbortController();
 * for await (const value of kvs.watch('alice/counter', { signal: stop.signal })) {
 *   console.log(value.reveal());
 *   if (value.reveal() >= 10) break;
 * }
 * ```
 */
import type { AnyLattice } from '../lattices/index.js';

export interface WatchOptions {
  /** Ends the iteration when aborted. */
  readonly signal?: AbortSignal;
  /** The subscription's lease (renewed while the iteration lasts; default 10 s). */
  readonly leaseMs?: number;
}

/** What a watch needs of a KVS client. */
export interface WatchSource {
  subscribe(keys: readonly string[], onUpdate: (key: string, value: AnyLattice | undefined) => void, leaseMs?: number): { close(): void };
  get(key: string): Promise<AnyLattice | undefined>;
}

/** Whether `value` adds nothing to `last` (a value pushed twice, the read and the push of one write, a stale one). */
function adds(last: AnyLattice | undefined, value: AnyLattice): boolean {
  if (last === undefined) return true;
  try {
    return !value.leq(last as never);
  } catch {
    return true;
  }
}

/** Merges a newly arrived value into the pending one (see the module's note on types). */
function mergePending(pending: AnyLattice | undefined, value: AnyLattice): AnyLattice {
  if (pending === undefined) return value;
  try {
    return pending.merge(value as never) as AnyLattice;
  } catch {
    return value;
  }
}

/** The values of `key`, as an async iterable (see the module's note). `closed` aborts when the client closes. */
export async function* watchKey(source: WatchSource, key: string, options: WatchOptions, closed: AbortSignal): AsyncGenerator<AnyLattice, void, undefined> {
  const signals = options.signal === undefined ? [closed] : [closed, options.signal];
  if (signals.some((signal) => signal.aborted)) return;
  let pending: AnyLattice | undefined;
  let last: AnyLattice | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const onEnd = (): void => {
    ended = true;
    wake?.();
  };
  const take = (value: AnyLattice | undefined): void => {
    if (value === undefined || ended || !adds(last, value)) return;
    pending = mergePending(pending, value);
    wake?.();
  };
  for (const signal of signals) signal.addEventListener('abort', onEnd, { once: true });
  const subscription = source.subscribe([key], (_key, value) => take(value), options.leaseMs ?? 10_000);
  // The value now: a read after the subscription, so nothing written meanwhile is missed.
  source.get(key).then(take, () => undefined);
  try {
    while (!ended) {
      if (pending === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      const value = pending;
      pending = undefined;
      last = value;
      yield value;
    }
  } finally {
    subscription.close();
    for (const signal of signals) signal.removeEventListener('abort', onEnd);
  }
}
