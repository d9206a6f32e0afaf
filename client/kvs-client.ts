/**
 * The KVS client: typed lattice GET/PUT/DELETE against the storage shards, used directly and by
 * the SDK and the executors' caches.
 *
 * - An address cache (key -> replica shard addresses) filled from any routing node with batched
 *   key-address lookups; ring changes pushed by the routing node clear it, and a KVS_WRONG_NODE
 *   answer drops the key's entry and retries with fresh addresses.
 * - Each operation goes to a random replica of its key. Operations issued in the same event-loop
 *   turn are batched: one frame per (shard, kind, ack mode).
 * - Timeouts and bounded retries with backoff (busy shards, timeouts, wrong node); a terminal
 *   error (a lattice type mismatch, a bad key) rejects at once with its typed error.
 * - `getAll` asks every replica and merges their answers.
 * - `subscribe` registers keys with every replica, renews the lease, and hands each pushed value
 *   to a callback. The subscriptions made in one turn go in one request per replica, and one
 *   loop renews all of them (batched per replica, by count and by the size of the values the
 *   answers carry), not a timer and a request per subscription.
 *
 * @example
 * ```ts
 * const kvs = await KvsClient.connect({ routing: ['tcp://127.0.0.1:7100'] });
 * await kvs.put('visits', Counter.ZERO.increment('me', 1), { ack: 'replicated' });
 * const visits = await kvs.get<Counter>('visits'); // Counter | undefined
 * await kvs.close();
 * ```
 */
import { ErrorCode, LfaasError, decodeLattice, ensureLfaasError, isRetryable } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { Rpc, bindTransport, clientKeyPair, clientToken, errorFromWireMessage, keyHash, kvsStartsTraces, pb, systemClock } from '../protocol/index.js';
import type { Clock, KeyPair, PbTypes, Transport } from '../protocol/index.js';
import { resolveCluster } from './cluster-file.js';
import { CONNECT_TIMEOUT_MS, firstContact } from './cluster-probe.js';
import { traced } from './trace-spans.js';
import { watchKey } from './watch.js';
import type { WatchOptions } from './watch.js';

/** When a write is acknowledged: after the in-memory merge, the disk sync, or a majority of replicas. */

/** Keys per key-address request to a routing node (which answers at most 4096). */
const LOOKUP_BATCH_KEYS = 1024;
/** Keys per subscribe request at most, and the bytes of their values (as last seen) at most: the answer carries them. */
const SUBSCRIBE_KEYS_PER_REQUEST = 256;
const SUBSCRIBE_ANSWER_BYTES = 4 * 1024 * 1024;
/** Values at least this large have their size remembered (for batching subscriptions), at most SIZES_MAX of them. */
const LARGE_VALUE_BYTES = 64 * 1024;
const SIZES_MAX = 4096;
export type AckMode = 'local' | 'durable' | 'replicated';

export interface KvsClientOptions {
  /** Routing node addresses (`tcp://host:port`); any one will do. */
  readonly routing: readonly string[];
  /** The interface the client's own socket binds to. */
  readonly host?: string;
  /** The host others reach the client's socket at (default: `host`; the transport option `advertise`). */
  readonly advertise?: string;
  /**
   * The client's key pair (a role process passes its member key). Absent: a fresh one, or plain
   * ZeroMQ when the routing addresses name no key (an `--insecure` cluster).
   */
  readonly keyPair?: KeyPair | 'insecure';
  /**
   * The owner token every request carries (`lfaas token create`); absent: the environment's
   * `LFAAS_TOKEN`; `''`: none (a member: role processes are known by their key).
   */
  readonly token?: string;
  /** Per attempt. */
  readonly requestTimeoutMs?: number;
  /** Attempts after the first, for retryable failures. */
  readonly retriesMax?: number;
  /** Tuples per request frame, at most. */
  readonly batchKeysMax?: number;
  /** Operations queued or in flight, at most; beyond, calls reject with TRANSPORT_BUSY. */
  readonly operationsMax?: number;
  /** Addresses cached, at most. */
  readonly addressCacheMax?: number;
  /** Seeded choice of replicas (tests); Math.random otherwise. */
  readonly random?: () => number;
}

/** {@link KvsClient.connect}'s options: the routing nodes may come from the environment or the state file. */
export interface KvsConnectOptions extends Omit<KvsClientOptions, 'routing'> {
  /** Routing node addresses; absent: `LFAAS_ROUTING`, else `.lfaas/cluster.json` (`lfaas up`). */
  readonly routing?: readonly string[];
  /**
   * How long the first contact may take (an echo a routing node answers); 0: none. Default 2000,
   * or 0 for a member (token `''`). No answer: TRANSPORT_NO_CLUSTER.
   */
  readonly connectTimeoutMs?: number;
}

export interface WriteOptions {
  readonly ack?: AckMode;
}

/** How long an unresponsive routing node is avoided; the lease of the ring subscription. */
const ROUTING_DOWN_MS = 5000;
const RING_LEASE_MS = 6000;

/** Values a shard served were checked canonical when it stored them; every field is still validated. */
const SERVED = { verifyCanonical: false } as const;

const ACK: Record<AckMode, number> = { local: pb.AckMode.ACK_LOCAL, durable: pb.AckMode.ACK_DURABLE, replicated: pb.AckMode.ACK_REPLICATED };
type Kind = 'get' | 'put' | 'delete';
const KIND: Record<Kind, number> = { get: pb.RequestKind.GET, put: pb.RequestKind.PUT, delete: pb.RequestKind.DELETE };

interface Operation {
  readonly kind: Kind;
  readonly key: string;
  readonly ack: AckMode;
  readonly tuple: PbTypes.IKeyTuple;
  /** A fixed replica (getAll); otherwise one is picked per attempt. */
  readonly replica?: string;
  /** The trace field of its span (a batch carries its first operation's). */
  readonly trace?: string;
  attempts: number;
  readonly resolve: (tuple: PbTypes.IKeyTuple) => void;
  readonly reject: (error: LfaasError) => void;
}

/** A subscription: `close()` stops renewing and unsubscribes. */
export interface Subscription {
  close(): void;
}

export class KvsClient {
  private readonly rpc: Rpc;
  private readonly addresses = new Map<string, readonly string[]>();
  private readonly lookups = new Map<string, ((replicas: readonly string[] | LfaasError) => void)[]>();
  private lookupScheduled = false;
  /** Keys whose lookup is in flight. */
  private readonly asking = new Set<string>();
  /** Routing nodes that failed to answer, avoided until the time given. */
  private readonly routingDownUntil = new Map<string, number>();
  private queue: Operation[] = [];
  private flushScheduled = false;
  private inFlight = 0;
  private ringEpoch = -1;
  private closed = false;
  /** Aborted by `close()`: ends every `watch`. */
  private readonly closing = new AbortController();
  private readonly timers = new Set<() => void>();
  /** Key -> its subscribers' callbacks, each with the lease it asked for. */
  private readonly subscriptions = new Map<string, Map<(key: string, value: AnyLattice | undefined) => void, number>>();
  /** New subscriptions' keys by lease, sent together at the end of the turn. */
  private readonly newSubscriptions = new Map<number, Set<string>>();
  /** Whether the one renewal loop of every subscription runs. */
  private renewing = false;
  /** The encoded size of large values as last read or pushed, least recent first: how subscriptions are batched. */
  private readonly sizes = new Map<string, number>();
  private readonly requestTimeoutMs: number;
  private readonly retriesMax: number;
  private readonly batchKeysMax: number;
  private readonly operationsMax: number;
  private readonly addressCacheMax: number;
  private readonly random: () => number;
  readonly counters = { requests: 0, operations: 0, retries: 0, wrongNode: 0, lookups: 0, ringUpdates: 0, pushes: 0 };

  /** Uses `transport` (the SDK and tests); see {@link KvsClient.connect} for the usual way. */
  constructor(
    readonly transport: Transport,
    private readonly clock: Clock,
    private readonly options: KvsClientOptions,
  ) {
    if (options.routing.length === 0) throw new LfaasError(ErrorCode.KVS_NO_SERVERS, 'a KVS client needs at least one routing node address');
    this.requestTimeoutMs = options.requestTimeoutMs ?? 1000;
    this.retriesMax = options.retriesMax ?? 4;
    this.batchKeysMax = options.batchKeysMax ?? 256;
    this.operationsMax = options.operationsMax ?? 100_000;
    this.addressCacheMax = options.addressCacheMax ?? 100_000;
    this.random = options.random ?? Math.random;
    const token = clientToken(options.token);
    this.rpc = new Rpc(transport, clock, { defaultTimeoutMs: this.requestTimeoutMs, ...(token === undefined ? {} : { token }) });
    this.rpc.onRequest((envelope) => this.onPush(envelope));
  }

  /**
   * Binds a ZeroMQ socket on loopback (or `host`) and subscribes to ring changes. Without
   * `routing`, the cluster is `LFAAS_ROUTING`'s, else the `lfaas up` state file's
   * (client/cluster-file.ts). A routing node must answer within `connectTimeoutMs`, else
   * TRANSPORT_NO_CLUSTER.
   */
  static async connect(options: KvsConnectOptions = {}): Promise<KvsClient> {
    const cluster = resolveCluster({ ...(options.routing === undefined ? {} : { routing: options.routing }), ...(options.token === undefined ? {} : { token: options.token }) }, { needSchedulers: false });
    const resolved: KvsClientOptions = { ...options, routing: cluster.routing, ...(cluster.token === undefined ? {} : { token: cluster.token }) };
    const transport = await bindTransport({ host: options.host ?? '127.0.0.1', ...(options.advertise === undefined ? {} : { advertise: options.advertise }), port: 0, keyPair: clientKeyPair(resolved.routing, options.keyPair) });
    const client = new KvsClient(transport, systemClock, resolved);
    // Members (token '') start alongside the routing node and wait for it themselves.
    const connectTimeoutMs = options.connectTimeoutMs ?? (options.token === '' ? 0 : CONNECT_TIMEOUT_MS);
    if (connectTimeoutMs > 0) {
      try {
        await firstContact(client.rpc, resolved.routing, connectTimeoutMs, cluster.source);
      } catch (error) {
        await client.close();
        throw error;
      }
    }
    client.watchRing();
    return client;
  }

  /** The value of `key`, or undefined when it does not exist (or was deleted). */
  get<L extends AnyLattice = AnyLattice>(key: string): Promise<L | undefined> {
    // A client span per operation, carried to the storage node (client/trace-spans.ts; a no-op without an SDK).
    return traced('lfaas.kvs.get', () => ({ 'lfaas.key.hash': keyHash(key) }), async (trace) => {
      const tuple = await this.enqueue('get', key, 'local', { key }, undefined, trace);
      if (tuple === undefined) return undefined;
      this.noteSize(key, tuple.payload?.byteLength ?? 0);
      return decodeLattice(tuple.payload ?? new Uint8Array(), SERVED) as L;
    }, { rootless: !kvsStartsTraces() });
  }

  /** Merges `value` into `key`. A key holding another lattice type rejects with KVS_LATTICE_MISMATCH. */
  put(key: string, value: AnyLattice, options: WriteOptions = {}): Promise<void> {
    return traced('lfaas.kvs.put', () => ({ 'lfaas.key.hash': keyHash(key), 'lfaas.ack': options.ack ?? 'local' }), async (trace) => {
      await this.enqueue('put', key, options.ack ?? 'local', { key, latticeType: value.type, payload: value.encode() }, undefined, trace);
    }, { rootless: !kvsStartsTraces() });
  }

  /** Deletes `key` (a tombstone the replicas agree on). */
  async delete(key: string, options: WriteOptions = {}): Promise<void> {
    await this.enqueue('delete', key, options.ack ?? 'local', { key });
  }

  /** Asks every replica of `key` and merges their values (undefined when none has it). */
  async getAll<L extends AnyLattice = AnyLattice>(key: string): Promise<L | undefined> {
    const replicas = await this.replicasOf(key);
    const answers = await Promise.allSettled(replicas.map((replica) => this.enqueue('get', key, 'local', { key }, replica)));
    let merged: AnyLattice | undefined;
    let failure: unknown;
    for (const answer of answers) {
      if (answer.status === 'rejected') {
        failure = answer.reason;
        continue;
      }
      if (answer.value === undefined) continue;
      const value = decodeLattice(answer.value.payload ?? new Uint8Array(), SERVED);
      merged = merged === undefined ? value : merged.type === value.type ? (merged.merge(value) as AnyLattice) : merged.type > value.type ? merged : value;
    }
    if (merged === undefined && failure !== undefined && answers.every((answer) => answer.status === 'rejected')) throw ensureLfaasError(failure);
    return merged as L | undefined;
  }

  /**
   * Subscribes to `keys`: `onUpdate` sees every new merged value (undefined after a delete),
   * pushed by the replicas. The lease is renewed every `leaseMs / 3` (the shortest asked) until `close()`.
   */
  subscribe(keys: readonly string[], onUpdate: (key: string, value: AnyLattice | undefined) => void, leaseMs = 10_000): Subscription {
    const lease = Math.max(150, leaseMs);
    // The first new subscription of the turn schedules the one request of them all.
    if (this.newSubscriptions.size === 0) this.after(0, () => this.subscribeNew());
    let fresh = this.newSubscriptions.get(lease);
    if (fresh === undefined) this.newSubscriptions.set(lease, (fresh = new Set()));
    for (const key of keys) {
      let callbacks = this.subscriptions.get(key);
      if (callbacks === undefined) this.subscriptions.set(key, (callbacks = new Map()));
      callbacks.set(onUpdate, lease);
      fresh.add(key);
    }
    // The subscriptions made in one turn (a cache holding a batch of keys) go in one request per
    // replica; one loop renews them all (a timer per subscription cost a request per key).
    if (!this.renewing) {
      this.renewing = true;
      this.after(this.renewPeriodMs(), () => this.renewAll());
    }
    return {
      close: () => {
        for (const key of keys) {
          const callbacks = this.subscriptions.get(key);
          callbacks?.delete(onUpdate);
          if (callbacks?.size === 0) this.subscriptions.delete(key);
        }
      },
    };
  }

  private subscribeNew(): void {
    if (this.closed) return;
    for (const [lease, keys] of this.newSubscriptions) this.sendSubscribeChunked([...keys].filter((key) => this.subscriptions.has(key)), lease);
    this.newSubscriptions.clear();
  }

  /** A third of the shortest lease asked (each lease is renewed three times within it). */
  private renewPeriodMs(): number {
    let shortest = Number.POSITIVE_INFINITY;
    for (const callbacks of this.subscriptions.values()) for (const lease of callbacks.values()) shortest = Math.min(shortest, lease);
    return Math.max(50, Math.floor((Number.isFinite(shortest) ? shortest : 10_000) / 3));
  }

  /** Renews every subscription, each key with the longest lease its subscribers asked. */
  private renewAll(): void {
    if (this.closed || this.subscriptions.size === 0) {
      this.renewing = false;
      return;
    }
    const byLease = new Map<number, string[]>();
    for (const [key, callbacks] of this.subscriptions) {
      const lease = Math.max(...callbacks.values());
      let list = byLease.get(lease);
      if (list === undefined) byLease.set(lease, (list = []));
      list.push(key);
    }
    for (const [lease, keys] of byLease) this.sendSubscribeChunked(keys, lease);
    this.after(this.renewPeriodMs(), () => this.renewAll());
  }

  /**
   * Subscribes `keys` in requests of at most SUBSCRIBE_KEYS_PER_REQUEST keys whose values (as
   * last seen) add up to at most SUBSCRIBE_ANSWER_BYTES: a subscription's answer carries the
   * keys' current values, and must fit in a frame. A larger value goes alone.
   */
  private sendSubscribeChunked(keys: readonly string[], leaseMs: number): void {
    let chunk: string[] = [];
    let bytes = 0;
    for (const key of keys) {
      const size = this.sizes.get(key) ?? 0;
      if (chunk.length > 0 && (chunk.length >= SUBSCRIBE_KEYS_PER_REQUEST || bytes + size > SUBSCRIBE_ANSWER_BYTES)) {
        void this.sendSubscribe(chunk, leaseMs);
        chunk = [];
        bytes = 0;
      }
      chunk.push(key);
      bytes += size;
    }
    if (chunk.length > 0) void this.sendSubscribe(chunk, leaseMs);
  }

  /**
   * Remembers the size of `key`'s value as last seen when it is large (what batching
   * subscriptions needs; small values count as nothing, and a read of one costs no bookkeeping).
   */
  private noteSize(key: string, bytes: number): void {
    if (bytes < LARGE_VALUE_BYTES) {
      if (this.sizes.size > 0) this.sizes.delete(key);
      return;
    }
    this.sizes.delete(key);
    this.sizes.set(key, bytes);
    if (this.sizes.size > SIZES_MAX) this.sizes.delete(this.sizes.keys().next().value!);
  }

  /**
   * Sets `key`'s replication factors (nodes, and shards in each node) for the whole cluster: the
   * routing node merges the setting into the ring and pushes it; the key's new replicas fill by
   * anti-entropy, the ones it leaves hand it off.
   */
  async setReplication(key: string, factors: { readonly global: number; readonly local?: number }): Promise<void> {
    if (key.length === 0) throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'empty key');
    if (!Number.isInteger(factors.global) || factors.global < 1 || !Number.isInteger(factors.local ?? 1) || (factors.local ?? 1) < 1) {
      throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'replication factors are integers >= 1');
    }
    const routing = this.pickRouting();
    const response = await this.rpc.request(routing, { ringUpdate: { replication: [{ key, tier: pb.Tier.TIER_MEMORY, global: factors.global, local: factors.local ?? 1 }] } }, { timeoutMs: this.requestTimeoutMs, retries: this.retriesMax });
    this.onRing(response.ringUpdate);
  }

  /** The replica addresses of `key` (from the cache or a routing node). */
  async replicasOf(key: string): Promise<readonly string[]> {
    const cached = this.addresses.get(key);
    if (cached !== undefined) return cached;
    return new Promise((resolve, reject) => {
      let waiters = this.lookups.get(key);
      if (waiters === undefined) this.lookups.set(key, (waiters = []));
      waiters.push((result) => (result instanceof LfaasError ? reject(result) : resolve(result)));
      this.scheduleLookup();
    });
  }

  /**
   * The values of `key` as an async iterable: its value now, then each pushed update (pending
   * updates merged, so a slow loop sees the latest state; client/watch.ts). Ends on `break`, when
   * `signal` aborts, or when the client closes; the subscription is closed then.
   *
   * @example
   * ```ts
   * for await (const value of kvs.watch('alice/counter', { signal })) console.log(value.reveal());
   * ```
   */
  watch(key: string, options: WatchOptions = {}): AsyncGenerator<AnyLattice, void, undefined> {
    return watchKey(this, key, options, this.closing.signal);
  }

  /** `await using kvs = await KvsClient.connect(...)`: closed when the scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    const error = new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the KVS client was closed');
    for (const operation of this.queue) operation.reject(error);
    this.queue = [];
    for (const waiters of this.lookups.values()) for (const waiter of waiters) waiter(error);
    this.lookups.clear();
    await this.rpc.close();
    await this.transport.close();
  }

  // ---- operations ----------------------------------------------------------------------------

  private enqueue(kind: Kind, key: string, ack: AckMode, tuple: PbTypes.IKeyTuple, replica?: string, trace = ''): Promise<PbTypes.IKeyTuple | undefined> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the KVS client is closed'));
    if (key.length === 0) return Promise.reject(new LfaasError(ErrorCode.KVS_BAD_KEY, 'empty key'));
    if (this.inFlight >= this.operationsMax) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BUSY, `${this.inFlight} operations in flight`));
    this.inFlight++;
    this.counters.operations++;
    return new Promise<PbTypes.IKeyTuple | undefined>((resolve, reject) => {
      const operation: Operation = {
        kind,
        key,
        ack,
        tuple,
        attempts: 0,
        ...(replica === undefined ? {} : { replica }),
        ...(trace.length > 0 ? { trace } : {}),
        resolve: (result) => {
          this.inFlight--;
          const code = result.error?.code ?? 0;
          if (code === 0) resolve(result);
          else if (code === pb.ErrorCode.KVS_KEY_NOT_FOUND) resolve(undefined);
          else reject(errorFromWireMessage(result.error!));
        },
        reject: (error) => {
          this.inFlight--;
          reject(error);
        },
      };
      this.schedule(operation);
    });
  }

  private schedule(operation: Operation): void {
    this.queue.push(operation);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // With requests in flight, flush after the current turn: the operations their answers set
    // off go out together. An idle client flushes once the current code yields: nothing else is
    // coming to batch with, and a turn's wait would only add latency.
    if (this.rpc.pendingCount > 0) setImmediate(() => this.flush());
    else queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    const operations = this.queue;
    this.queue = [];
    const groups = new Map<string, { replica: string; kind: Kind; ack: AckMode; operations: Operation[] }>();
    const unresolved: Operation[] = [];
    for (const operation of operations) {
      let replica = operation.replica;
      if (replica === undefined) {
        const replicas = this.addresses.get(operation.key);
        if (replicas === undefined || replicas.length === 0) {
          unresolved.push(operation);
          continue;
        }
        replica = replicas[Math.floor(this.random() * replicas.length)]!;
      }
      const id = `${replica}\u0000${operation.kind}\u0000${operation.ack}`;
      let group = groups.get(id);
      if (group === undefined) groups.set(id, (group = { replica, kind: operation.kind, ack: operation.ack, operations: [] }));
      group.operations.push(operation);
    }
    for (const group of groups.values()) {
      for (let start = 0; start < group.operations.length; start += this.batchKeysMax) this.send(group.replica, group.kind, group.ack, group.operations.slice(start, start + this.batchKeysMax));
    }
    for (const operation of unresolved) {
      this.replicasOf(operation.key).then(
        () => this.schedule(operation),
        (error: unknown) => this.retryOrReject(operation, ensureLfaasError(error)),
      );
    }
  }

  private send(replica: string, kind: Kind, ack: AckMode, operations: Operation[]): void {
    this.counters.requests++;
    const body: PbTypes.IEnvelope = { kvsRequest: { kind: KIND[kind], ack: ACK[ack], tuples: operations.map((operation) => operation.tuple) } };
    const trace = operations.find((operation) => operation.trace !== undefined)?.trace;
    if (trace !== undefined) body.traceId = trace;
    this.rpc.request(replica, body, { timeoutMs: this.requestTimeoutMs }).then(
      (response) => {
        const tuples = response.kvsResponse?.tuples ?? [];
        operations.forEach((operation, index) => {
          const result = tuples[index];
          if (result === undefined || result.key !== operation.key) {
            this.retryOrReject(operation, new LfaasError(ErrorCode.PROTO_MALFORMED, `the answer of ${replica} lacks ${JSON.stringify(operation.key)}`));
            return;
          }
          const code = result.error?.code ?? 0;
          if (code === pb.ErrorCode.KVS_WRONG_NODE) {
            this.counters.wrongNode++;
            this.addresses.delete(operation.key);
            this.retryOrReject(operation, errorFromWireMessage(result.error!));
          } else if (code === pb.ErrorCode.TRANSPORT_TIMEOUT || code === pb.ErrorCode.KVS_BUSY) this.retryOrReject(operation, errorFromWireMessage(result.error!));
          else operation.resolve(result);
        });
      },
      (error: unknown) => {
        const typed = ensureLfaasError(error);
        // A dead or unreachable shard: its addresses may be stale too.
        if (typed.code === ErrorCode.TRANSPORT_TIMEOUT) for (const operation of operations) this.addresses.delete(operation.key);
        for (const operation of operations) this.retryOrReject(operation, typed);
      },
    );
  }

  private retryOrReject(operation: Operation, error: LfaasError): void {
    const retryable = isRetryable(error.code) || error.code === ErrorCode.KVS_WRONG_NODE || error.code === ErrorCode.KVS_NO_SERVERS;
    if (!retryable || operation.attempts >= this.retriesMax || this.closed || operation.replica !== undefined) {
      operation.reject(error);
      return;
    }
    operation.attempts++;
    this.counters.retries++;
    // Backoff with jitter: 10, 20, 40... ms.
    const delayMs = Math.min(500, 10 * 2 ** (operation.attempts - 1)) * (0.5 + this.random());
    this.after(delayMs, () => this.schedule(operation));
  }

  // ---- addresses and ring ----------------------------------------------------------------------

  private scheduleLookup(): void {
    if (this.lookupScheduled) return;
    this.lookupScheduled = true;
    setImmediate(() => this.lookup(0));
  }

  private lookup(attempt: number, keysGiven?: string[]): void {
    this.lookupScheduled = false;
    if (this.closed) return;
    let keys = keysGiven ?? [...this.lookups.keys()].filter((key) => !this.asking.has(key));
    if (keys.length === 0) return;
    // A routing node answers at most 4096 keys a request: ask in slices of 1024 (the rest next turn).
    if (keys.length > LOOKUP_BATCH_KEYS) {
      const rest = keys.slice(LOOKUP_BATCH_KEYS);
      keys = keys.slice(0, LOOKUP_BATCH_KEYS);
      if (keysGiven !== undefined) setImmediate(() => this.lookup(attempt, rest));
      else this.scheduleLookup();
    }
    for (const key of keys) this.asking.add(key);
    this.counters.lookups++;
    const routing = this.pickRouting();
    const settle = (key: string, result: readonly string[] | LfaasError): void => {
      this.asking.delete(key);
      const waiters = this.lookups.get(key) ?? [];
      this.lookups.delete(key);
      for (const waiter of waiters) waiter(result);
    };
    this.rpc.request(routing, { keyAddressRequest: { keys } }, { timeoutMs: this.requestTimeoutMs }).then(
      (response) => {
        const answer = response.keyAddressResponse;
        if (answer?.error && (answer.error.code ?? 0) !== 0) {
          const error = errorFromWireMessage(answer.error);
          if (attempt < this.retriesMax) this.after(50 * (attempt + 1), () => this.lookup(attempt + 1, keys));
          else for (const key of keys) settle(key, error);
          return;
        }
        if (this.addresses.size + keys.length > this.addressCacheMax) this.addresses.clear();
        for (const address of answer?.addresses ?? []) {
          const key = address.key ?? '';
          const replicas = address.replicas ?? [];
          if (replicas.length > 0) this.addresses.set(key, replicas);
        }
        for (const key of keys) {
          const replicas = this.addresses.get(key);
          settle(key, replicas ?? new LfaasError(ErrorCode.KVS_NO_SERVERS, `no replica for ${JSON.stringify(key)}`));
        }
      },
      (error: unknown) => {
        this.markDown(routing);
        if (attempt < this.retriesMax && !this.closed) this.lookup(attempt + 1, keys);
        else for (const key of keys) settle(key, ensureLfaasError(error));
      },
    );
  }

  /** A random routing node among those not recently unresponsive (any, if all were). */
  private pickRouting(): string {
    const now = this.clock.now();
    const up = this.options.routing.filter((address) => (this.routingDownUntil.get(address) ?? 0) <= now);
    const candidates = up.length > 0 ? up : this.options.routing;
    return candidates[Math.floor(this.random() * candidates.length)]!;
  }

  private markDown(routing: string): void {
    this.routingDownUntil.set(routing, this.clock.now() + ROUTING_DOWN_MS);
  }

  /**
   * Subscribes to ring changes at a routing node, renewing a short lease often, so that when that
   * routing node dies the client is subscribed at another within a few seconds.
   */
  private watchRing(): void {
    const ask = (): void => {
      if (this.closed) return;
      const routing = this.pickRouting();
      this.rpc.request(routing, { ringRequest: { subscriber: this.transport.address, leaseMs: RING_LEASE_MS } }, { timeoutMs: this.requestTimeoutMs }).then(
        (response) => {
          this.onRing(response.ringUpdate);
          this.after(RING_LEASE_MS / 3, ask);
        },
        () => {
          // That routing node did not answer: another one, soon.
          this.markDown(routing);
          this.after(100, ask);
        },
      );
    };
    ask();
  }

  private onRing(ring: PbTypes.IRingUpdate | null | undefined): void {
    if (ring === null || ring === undefined) return;
    this.counters.ringUpdates++;
    const epoch = Number(ring.epoch ?? 0);
    if (epoch !== this.ringEpoch) {
      this.ringEpoch = epoch;
      this.addresses.clear();
      // Subscriptions follow the new replicas.
      if (this.subscriptions.size > 0) this.sendSubscribeChunked([...this.subscriptions.keys()], 10_000);
    }
  }

  private onPush(envelope: PbTypes.Envelope): void {
    if (envelope.body === 'ringUpdate') {
      this.onRing(envelope.ringUpdate);
      return;
    }
    if (envelope.body === 'keyUpdate') {
      this.counters.pushes++;
      for (const tuple of envelope.keyUpdate?.tuples ?? []) this.deliverUpdate(tuple);
    }
  }

  private deliverUpdate(tuple: PbTypes.IKeyTuple): void {
    const key = tuple.key ?? '';
    const callbacks = this.subscriptions.get(key);
    if (callbacks === undefined || callbacks.size === 0) return;
    this.noteSize(key, tuple.payload?.byteLength ?? 0);
    let value: AnyLattice | undefined;
    try {
      value = tuple.deleted === true ? undefined : decodeLattice(tuple.payload ?? new Uint8Array(), SERVED);
    } catch {
      return;
    }
    for (const callback of callbacks.keys()) {
      try {
        callback(key, value);
      } catch {
        // A subscriber's bug must not stop the others.
      }
    }
  }

  private async sendSubscribe(keys: readonly string[], leaseMs: number): Promise<void> {
    const byReplica = new Map<string, string[]>();
    await Promise.all(
      keys.map(async (key) => {
        try {
          for (const replica of await this.replicasOf(key)) {
            let list = byReplica.get(replica);
            if (list === undefined) byReplica.set(replica, (list = []));
            list.push(key);
          }
        } catch {
          // No address now; the next renewal tries again.
        }
      }),
    );
    for (const [replica, list] of byReplica) {
      this.rpc.request(replica, { subscribe: { subscriber: this.transport.address, keys: list, leaseMs } }, { timeoutMs: this.requestTimeoutMs }).then(
        (response) => {
          for (const tuple of response.kvsResponse?.tuples ?? []) this.deliverUpdate(tuple);
        },
        () => {
          // Renewed later.
        },
      );
    }
  }

  /** A one-shot timer the client cancels on close. */
  private after(delayMs: number, callback: () => void): void {
    const cancel = this.clock.setTimer(delayMs, () => {
      this.timers.delete(cancel);
      callback();
    });
    this.timers.add(cancel);
  }
}
