/**
 * A whole Lattice FaaS cluster in the test's process: the real machines (a routing node, a
 * storage node with one shard on an in-memory disk, a scheduler, executors) on the in-memory network
 * (protocol/memory-network.ts) with the real clock, the executors' real host side (cache, run
 * scopes of the consistency modes, counters, mailboxes, runtime pool), and a real `LatticeFaas`
 * client. Only the sandbox is swapped: functions are the objects the test registered, run by the
 * sandbox's own function side in this process (./in-process-runtime.ts). No socket, no child
 * process, no disk.
 *
 * @example
 * ```ts
 * import { createTestCluster } from 'lattice-faas/testing';
 * import square from './square.js';
 *
 * const cluster = await createTestCluster();
 * const sq = await cluster.register('square', square, { timeoutMs: 1000 });
 * expect(await cluster.call(sq, [7])).toBe(49);
 * await cluster.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, HybridClock, LfaasError, Lww } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { DEFAULT_KEEP_ALIVE_MS, MemoryNetwork, Rpc, errorFromWireMessage, runMachine, seededRandom, systemClock } from '../protocol/index.js';
import type { MachineShell } from '../protocol/index.js';
import { DEFAULT_SHARD_MEMORY_BYTES, MemoryStore, RoutingNode, Shard, StorageNode } from '../kvs/index.js';
import { ExecutorCache, ExecutorHost, ExecutorNode, RuntimePool } from '../executor/index.js';
import { KvsTasks, SchedulerNode } from '../scheduler/index.js';
import { KvsClient, LatticeFaas } from '../client/index.js';
import type { AnyFunction, CallArgs, CallFuture, CallOptions, Consistency, DagDefinition, DagHandle, FunctionHandle, RegisterOptions, UserArgs, UserResult } from '../client/index.js';
import type { UserFunction } from '../sandbox/index.js';
import { FunctionTable, InProcessRuntime, captureConsole, releaseConsole } from './in-process-runtime.js';
import type { FunctionLogRecord } from './in-process-runtime.js';

export interface TestClusterOptions {
  /** Executors (default 1). With more, a DAG's functions may run on different executors, as deployed. */
  readonly executors?: number;
  /** Runtime slots per executor: calls running at once (default 8). */
  readonly workers?: number;
  /** The consistency mode of calls that name none (default `lww`, as deployed). */
  readonly consistency?: Consistency;
  /** Keys written before the cluster is handed over: lattices as they are, plain values as LWW registers (what `ctx.put` writes). */
  readonly kvs?: Readonly<Record<string, unknown>>;
  /** Seeds the network's and the scheduler's choices (default: random). */
  readonly seed?: number;
  /** Direct dispatch of repeated calls to the executor that ran them (default on, as the SDK's). */
  readonly directCalls?: boolean;
  /** How long the cluster may take to come up (default 5000 ms; it takes a few ms). */
  readonly startTimeoutMs?: number;
}

/** Registration options: as `LatticeFaas.register`'s (the function's timeout, memory class, reads...). */
export type TestRegisterOptions = RegisterOptions;

/** Executors, runtime slots, keys and records at most, so that a mistaken option fails at once. */
const EXECUTORS_MAX = 16;
const WORKERS_MAX = 256;
const SEED_KEYS_MAX = 10_000;
const LOGS_MAX = 100_000;
const DEFAULT_TIMEOUT_MS = 60_000;

/** Everything one executor runs, for its stop. */
interface ExecutorParts {
  readonly shell: MachineShell;
  readonly pool: RuntimePool;
  readonly cache: ExecutorCache;
  readonly kvs: KvsClient;
  readonly peers: Rpc;
}

/**
 * A running in-process cluster: register functions and DAGs and call them as with `LatticeFaas`
 * (the calls go through the real client); read and write the KVS with {@link kvs}; read what
 * functions logged in {@link logs}. Close it (or `await using` it) when done.
 */
export class TestCluster {
  /** What the cluster's functions logged (`console.*` and `ctx.log`), oldest first, with call id and function. */
  readonly logs: FunctionLogRecord[] = [];
  private readonly latest = new Map<string, number>();
  private closed = false;

  /** @internal Made by {@link createTestCluster}. */
  constructor(
    /** The real client, over the in-memory network: everything `LatticeFaas` offers. */
    readonly faas: LatticeFaas,
    private readonly admin: Rpc,
    private readonly scheduler: string,
    private readonly table: FunctionTable,
    private readonly defaults: { readonly consistency: Consistency | undefined },
    private readonly stops: Array<() => Promise<void>>,
  ) {}

  /** The KVS, through the client's `KvsClient`: `put(key, lattice)`, `get(key)`, `delete(key)`, `subscribe`. */
  get kvs(): KvsClient {
    return this.faas.kvs;
  }

  /**
   * Registers `fn` (a function module's default export: its arguments, then `ctx`) under `name`
   * with the scheduler, as `LatticeFaas.register` does with a bundle; resolves with its typed
   * handle at the new version.
   */
  async register<F extends AnyFunction, Name extends string = string>(name: Name, fn: F, options: TestRegisterOptions = {}): Promise<FunctionHandle<F, Name>> {
    this.checkOpen();
    if (typeof fn !== 'function') throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `register takes a function for ${JSON.stringify(name)}`);
    const code = this.table.add(name, fn as UserFunction);
    const response = await this.admin.request(
      this.scheduler,
      {
        registerFunction: {
          spec: {
            name,
            code: Buffer.from(code, 'utf8'),
            memoryMb: options.memoryMb ?? 128,
            timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
            keepAliveMs: options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
            keepAlivePolicy: options.keepAlive ?? 'fixed',
            reads: [...(options.reads ?? [])],
            concurrency: options.concurrency ?? 0,
          },
        },
      },
      { timeoutMs: 10_000 },
    );
    const answer = response.registerFunctionResponse;
    if (answer?.error?.code) throw errorFromWireMessage(answer.error);
    const version = answer?.version ?? 0;
    this.latest.set(name, version);
    return { name, version };
  }

  /** Calls a function (its handle, or its name: the latest version registered here) and resolves with its result. */
  call<F extends AnyFunction>(fn: FunctionHandle<F> | string, args: CallArgs<UserArgs<F>> | readonly unknown[] = [], options: CallOptions = {}): Promise<UserResult<F>> {
    this.checkOpen();
    return this.faas.call<F>(this.handle<F>(fn), args, this.withDefaults(options));
  }

  /** Starts a call whose result lands in the KVS; `await future.result()`. */
  callAsync<F extends AnyFunction>(fn: FunctionHandle<F> | string, args: CallArgs<UserArgs<F>> | readonly unknown[] = [], options: CallOptions = {}): Promise<CallFuture<UserResult<F>>> {
    this.checkOpen();
    return this.faas.callAsync<F>(this.handle<F>(fn), args, this.withDefaults(options));
  }

  /** Registers a DAG built with `dag(...)`. */
  registerDag<In, Out>(definition: DagDefinition<In, Out>): Promise<DagHandle<In, Out>> {
    this.checkOpen();
    return this.faas.registerDag(definition);
  }

  /** Calls a DAG with per-function arguments; resolves with the sink's result. */
  callDag<In, Out>(dag: DagHandle<In, Out> | string, args: NoInfer<In>, options: CallOptions = {}): Promise<Out> {
    this.checkOpen();
    return this.faas.callDag(dag, args, this.withDefaults(options));
  }

  /** Starts a DAG call whose result lands in the KVS. */
  callDagAsync<In, Out>(dag: DagHandle<In, Out> | string, args: NoInfer<In>, options: CallOptions = {}): Promise<CallFuture<Out>> {
    this.checkOpen();
    return this.faas.callDagAsync(dag, args, this.withDefaults(options));
  }

  /** The records one call (run) logged, oldest first. */
  logsOf(callId: string): FunctionLogRecord[] {
    return this.logs.filter((record) => record.callId === callId);
  }

  /** Stops every machine, the client and the pools; no timer of the cluster is left. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.faas.close();
      await this.admin.close();
      await this.admin.transport.close();
      for (const stop of this.stops.splice(0).reverse()) await stop();
    } finally {
      releaseConsole();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  record(entry: FunctionLogRecord): void {
    // Bounded: the oldest go first (a test that logs this much reads the latest).
    if (this.logs.length >= LOGS_MAX) this.logs.splice(0, this.logs.length - LOGS_MAX + 1);
    this.logs.push(entry);
  }

  private handle<F extends AnyFunction>(fn: FunctionHandle<F> | string): FunctionHandle<F> {
    if (typeof fn !== 'string') return fn;
    // By name: the latest version registered here (a lease the client holds for an older one is keyed by it).
    return { name: fn, version: this.latest.get(fn) ?? 0 };
  }

  private withDefaults(options: CallOptions): CallOptions {
    const consistency = options.consistency ?? this.defaults.consistency;
    return consistency === undefined ? options : { ...options, consistency };
  }

  private checkOpen(): void {
    if (this.closed) throw new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the test cluster is closed');
  }
}

/** Whether a value is a lattice (seeded as it is) rather than a plain value (seeded as an LWW register). */
export function isLatticeValue(value: unknown): value is AnyLattice {
  return typeof value === 'object' && value !== null && typeof (value as { encode?: unknown }).encode === 'function' && typeof (value as { type?: unknown }).type === 'number';
}

/** A seed value as the KVS holds it: a lattice as is, a plain value as an LWW register written now. */
export function seedLattice(clock: HybridClock, value: unknown): AnyLattice {
  return isLatticeValue(value) ? value : Lww.write(clock, value);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts an in-process cluster and resolves once it serves: the KVS answers, the seeded keys are
 * written, and the scheduler knows every executor.
 *
 * @example
 * ```ts
 * await using cluster = await createTestCluster({ kvs: { greeting: 'hello' } });
 * const greet = await cluster.register('greet', async (name: string, ctx: FunctionContext) => `${await ctx.get('greeting')}, ${name}`);
 * await cluster.call(greet, ['ada']); // 'hello, ada'
 * ```
 */
export async function createTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const executorCount = options.executors ?? 1;
  const workers = options.workers ?? 8;
  if (!Number.isSafeInteger(executorCount) || executorCount < 1 || executorCount > EXECUTORS_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `executors is 1 to ${EXECUTORS_MAX}`);
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > WORKERS_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `workers is 1 to ${WORKERS_MAX}`);
  const seeds = Object.entries(options.kvs ?? {});
  if (seeds.length > SEED_KEYS_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `at most ${SEED_KEYS_MAX} seeded keys`);
  const seed = options.seed ?? randomBytes(4).readUInt32LE(0);
  const random = seededRandom(seed);
  const network = new MemoryNetwork({ clock: systemClock, random: random.fork() });
  const address = (name: string): string => `mem://${name}`;
  const stops: Array<() => Promise<void>> = [];
  const table = new FunctionTable();
  let cluster: TestCluster | undefined;
  const pending: FunctionLogRecord[] = [];
  const record = (entry: FunctionLogRecord): void => {
    if (cluster === undefined) pending.push(entry);
    else cluster.record(entry);
  };
  const kvsClient = (name: string): KvsClient => new KvsClient(network.endpoint(name), systemClock, { routing: [address('routing')], token: '', requestTimeoutMs: 2000 });
  captureConsole();
  try {
    // The KVS: one routing node, one storage node with one shard, replication 1 (one process holds it all).
    const routing = runMachine(new RoutingNode({ address: address('routing'), defaults: { global: 1, local: 1 } }), network.endpoint('routing'), systemClock);
    stops.push(() => routing.stop());
    const storage = runMachine(new StorageNode({ nodeId: 'storage', address: address('storage'), shardAddresses: [address('shard-0')], routing: [address('routing')] }), network.endpoint('storage'), systemClock);
    stops.push(() => storage.stop());
    // Its disk is the in-memory store, read through the shard's tier as a deployed shard reads LMDB.
    const disk = new MemoryStore();
    const shard = runMachine(
      new Shard({ nodeId: 'storage', shardIndex: 0, address: address('shard-0'), disk, memoryBudgetBytes: DEFAULT_SHARD_MEMORY_BYTES, defaults: { global: 1, local: 1 }, reportTo: [address('routing')], nowUs: () => performance.now() * 1000 }),
      network.endpoint('shard-0'),
      systemClock,
      { store: disk },
    );
    stops.push(async () => {
      await shard.stop();
      await disk.close();
    });

    // The scheduler, its registry and records in that KVS.
    const schedulerKvs = kvsClient('scheduler-kvs');
    stops.push(() => schedulerKvs.close());
    const scheduler = new SchedulerNode({ address: address('scheduler'), random: random.fork(), incarnation: `test-${seed.toString(36)}`, pinExecutors: Math.min(2, executorCount) });
    const schedulerShell = runMachine(scheduler, network.endpoint('scheduler'), systemClock, { tasks: new KvsTasks(schedulerKvs) });
    stops.push(() => schedulerShell.stop());

    // The executors: real hosts, pools of in-process runtimes.
    for (let index = 0; index < executorCount; index++) {
      const parts = startExecutor(network, index, workers, kvsClient(`executor-${index}-kvs`), table, record);
      stops.push(async () => {
        await parts.shell.stop();
        await parts.pool.close();
        parts.cache.close();
        await parts.peers.close();
        await parts.peers.transport.close();
        await parts.kvs.close();
      });
    }

    const faas = LatticeFaas.over(kvsClient('client-kvs'), network.endpoint('client'), { routing: [address('routing')], schedulers: [address('scheduler')], token: '', ...(options.directCalls === undefined ? {} : { directCalls: options.directCalls }) });
    const admin = new Rpc(network.endpoint('admin'), systemClock);
    cluster = new TestCluster(faas, admin, address('scheduler'), table, { consistency: options.consistency }, stops);
    for (const entry of pending.splice(0)) cluster.record(entry);

    const deadline = Date.now() + (options.startTimeoutMs ?? 5000);
    await untilServing(faas.kvs, deadline);
    const clock = new HybridClock('lattice-faas/testing', () => Date.now());
    await Promise.all(seeds.map(([key, value]) => faas.kvs.put(key, seedLattice(clock, value), { ack: 'replicated' })));
    for (let attempt = 0; scheduler.executorAddresses().length < executorCount; attempt++) {
      if (Date.now() > deadline || attempt > 10_000) throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `the test cluster's scheduler knows ${scheduler.executorAddresses().length} of ${executorCount} executors after ${options.startTimeoutMs ?? 5000} ms`);
      await sleep(2);
    }
    return cluster;
  } catch (error) {
    if (cluster !== undefined) await cluster.close();
    else {
      for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
      releaseConsole();
    }
    throw error;
  }
}

/** One executor: its KVS client and cache, a pool of in-process runtimes, its host and machine. */
function startExecutor(network: MemoryNetwork, index: number, workers: number, kvs: KvsClient, table: FunctionTable, record: (entry: FunctionLogRecord) => void): ExecutorParts {
  const self = `mem://executor-${index}`;
  const cache = new ExecutorCache(kvs);
  const pool = new RuntimePool({
    isolation: 'none',
    prewarm: 0,
    workersMax: workers,
    // The records go to the cluster's `logs` (the runtime reports them); none to stderr.
    functionLogLevel: 'silent',
    startRuntime: () => new InProcessRuntime(table, record),
  });
  const peers = new Rpc(network.endpoint(`executor-${index}-peers`), systemClock);
  const host = new ExecutorHost({ self, pool, cache, kvs, rpc: peers });
  const node = new ExecutorNode({ address: self, schedulers: ['mem://scheduler'], incarnation: `test-${index}` });
  const shell = runMachine(node, network.endpoint(`executor-${index}`), systemClock, { tasks: host });
  return { shell, pool, cache, kvs, peers };
}

/** Resolves once the KVS answers a read (the storage node has joined the ring). */
async function untilServing(kvs: KvsClient, deadline: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await kvs.get('lattice-faas-testing-probe');
      return;
    } catch (error) {
      if (Date.now() > deadline || attempt > 10_000) throw new LfaasError(ErrorCode.KVS_NO_SERVERS, 'the test cluster\'s KVS did not come up', { cause: error });
      await sleep(2);
    }
  }
}
