/**
 * The function and DAG registry of a scheduler, the sans-I/O part of the scheduler
 * machine that owns names and versions. It lives in the KVS (protocol/faas-records.ts), so every
 * scheduler serves every function; what this one has read it keeps for `ttlMs`, refreshing behind
 * the calls after that (stale while revalidating), so the call path does not wait for the KVS.
 *
 * - Versions are numbered without a coordinator: the latest known + 1, written as a Priority (the
 *   first registration of a number wins), read back, and the next number if another scheduler's
 *   registration won. Numbers are never reused, even after every version was deleted.
 * - Registrations of one name run one at a time on this scheduler.
 * - DAGs are checked (scheduler/dag.ts) and their functions pinned before they are stored.
 * - A deleted version answers GONE; a name whose newest version was deleted means the newest left.
 *
 * Its I/O goes through the scheduler ({@link RegistryHost}): KVS tasks, replies, pinning.
 */
import { ErrorCode, GSet, LfaasError, Lww, Max, Priority } from '../lattices/index.js';
import type { AnyLattice, HybridClock } from '../lattices/index.js';
import { DAGS_KEY, DEFAULT_KEEP_ALIVE_MS, FUNCTIONS_KEY, KEEP_ALIVE_POLICIES, NAME_PATTERN, dagKey, dagRecordOf, errorToWire, functionIndexKey, functionKey, functionRecordOf, readsProblem, SOURCE_MAP_BYTES_MAX } from '../protocol/index.js';
import type { DagRecord, Effect, Envelope, FunctionRecord, KeepAlivePolicyName, PbTypes } from '../protocol/index.js';
import { dagShape } from './dag.js';
import type { DagShape } from './dag.js';
import type { Continuation, SchedulerTask } from './kvs-tasks.js';

const CODE_BYTES_MAX = 4 * 1024 * 1024;
const VERSIONS_LISTED_MAX = 100;

/** What the registry knows of a function version (its code stays in the KVS). */
export interface FunctionMeta {
  readonly name: string;
  readonly version: number;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly keepAliveMs: number;
  readonly keepAlivePolicy: KeepAlivePolicyName;
  readonly reads: readonly string[];
  readonly codeBytes: number;
  readonly registeredAtMs: number;
  /** Calls running at once at most (0: no limit). */
  readonly concurrencyLimit: number;
}

interface FunctionEntry {
  latest: number;
  readonly versions: Map<number, FunctionMeta>;
  fetchedAtMs: number;
  refreshing: boolean;
}

/** What the registry needs of its scheduler. */
export interface RegistryHost {
  kvs(task: SchedulerTask, then: Continuation): Effect[];
  reply(request: Envelope, body: PbTypes.IEnvelope): Effect[];
  /** Prefetching: sends the functions' code to executors ahead of their calls. */
  pin(functions: readonly { name: string; version: number }[]): Effect[];
  now(): number;
  readonly clock: HybridClock;
  /** A registration succeeded (for the scheduler's counters). */
  registered(): void;
}

export class Registry {
  private readonly functions = new Map<string, FunctionEntry>();
  private readonly dags = new Map<string, { readonly record: DagRecord; readonly shape: DagShape; fetchedAtMs: number }>();
  private readonly lookups = new Map<string, ((error: LfaasError | undefined) => Effect[])[]>();
  private readonly registering = new Map<string, (() => Effect[])[]>();

  constructor(
    private readonly host: RegistryHost,
    private readonly ttlMs: number,
  ) {}

  /** Resolves a function version (0: the latest) from the registry cache or the KVS. */
  withFunction(name: string, version: number, then: (error: LfaasError | undefined, meta: FunctionMeta | undefined) => Effect[]): Effect[] {
    if (!NAME_PATTERN.test(name)) return then(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`), undefined);
    const entry = this.functions.get(name);
    const known = entry?.versions.get(version === 0 ? entry.latest : version);
    if (entry !== undefined && known !== undefined) {
      const effects = then(undefined, known);
      // Stale while revalidating: the call goes on with what is known, a refresh runs behind it.
      if (version === 0 && this.host.now() - entry.fetchedAtMs > this.ttlMs && !entry.refreshing) {
        entry.refreshing = true;
        effects.push(...this.fetchFunction(name, 0, () => []));
      }
      return effects;
    }
    return this.fetchFunction(name, version, (error) => {
      if (error !== undefined) return then(error, undefined);
      const fresh = this.functions.get(name);
      const meta = fresh?.versions.get(version === 0 ? fresh.latest : version);
      if (meta === undefined) {
        const latest = fresh?.latest ?? 0;
        return then(
          version > 0 && version <= latest
            ? new LfaasError(ErrorCode.GONE, `version ${version} of ${name} was deleted`)
            : new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, version > 0 ? `${name} has no version ${version}` : `no function is named ${JSON.stringify(name)}`),
          undefined,
        );
      }
      return then(undefined, meta);
    });
  }

  withFunctions(names: readonly string[], then: (error: LfaasError | undefined, metas: Map<string, FunctionMeta> | undefined) => Effect[]): Effect[] {
    const metas = new Map<string, FunctionMeta>();
    let left = names.length;
    let failed = false;
    const effects: Effect[] = [];
    for (const name of names) {
      effects.push(
        ...this.withFunction(name, 0, (error, meta) => {
          if (failed) return [];
          if (error !== undefined) {
            failed = true;
            return then(error, undefined);
          }
          metas.set(name, meta!);
          return --left === 0 ? then(undefined, metas) : [];
        }),
      );
    }
    return effects;
  }

  /** Reads a function's index and its newest versions (or one version) into the cache; waiters share one read. */
  private fetchFunction(name: string, version: number, then: (error: LfaasError | undefined) => Effect[]): Effect[] {
    const lookup = `${name}@${version}`;
    const waiting = this.lookups.get(lookup);
    if (waiting !== undefined) {
      waiting.push(then);
      return [];
    }
    this.lookups.set(lookup, [then]);
    const settle = (error: LfaasError | undefined): Effect[] => {
      const waiters = this.lookups.get(lookup) ?? [];
      this.lookups.delete(lookup);
      const entry = this.functions.get(name);
      if (entry !== undefined) entry.refreshing = false;
      return waiters.flatMap((waiter) => waiter(error));
    };
    if (version > 0) {
      return this.host.kvs({ op: 'get', key: functionKey(name, version) }, (error, value) => {
        if (error !== undefined) return settle(error);
        const record = functionRecordOf(value as AnyLattice | undefined);
        if (record !== undefined) this.remember(record, record.version);
        return settle(undefined);
      });
    }
    return this.host.kvs({ op: 'get', key: functionIndexKey(name) }, (error, value) => {
      if (error !== undefined) return settle(error);
      const latest = Number((value as AnyLattice | undefined)?.reveal() ?? 0);
      if (latest === 0) {
        this.functions.delete(name);
        return settle(undefined);
      }
      // The newest versions, newest first: the latest that still exists is the one a name means.
      const versions = Array.from({ length: Math.min(16, latest) }, (_, i) => latest - i);
      return this.host.kvs({ op: 'getMany', keys: versions.map((v) => functionKey(name, v)) }, (failure, values) => {
        if (failure !== undefined) return settle(failure);
        const records = (values as (AnyLattice | undefined)[]).map((entry) => functionRecordOf(entry));
        const newest = records.find((record) => record !== undefined);
        const entry = this.entryOf(name);
        entry.fetchedAtMs = this.host.now();
        // Versions that are gone leave the cache.
        versions.forEach((v, i) => {
          if (records[i] === undefined) entry.versions.delete(v);
        });
        for (const record of records) if (record !== undefined) this.remember(record, newest?.version ?? 0);
        if (newest === undefined) entry.latest = 0;
        return settle(undefined);
      });
    });
  }

  private entryOf(name: string): FunctionEntry {
    let entry = this.functions.get(name);
    if (entry === undefined) {
      entry = { latest: 0, versions: new Map(), fetchedAtMs: this.host.now(), refreshing: false };
      this.functions.set(name, entry);
    }
    return entry;
  }

  private remember(record: FunctionRecord, latest: number): void {
    const entry = this.entryOf(record.name);
    entry.versions.set(record.version, {
      name: record.name,
      version: record.version,
      memoryMb: record.memoryMb,
      timeoutMs: record.timeoutMs,
      keepAliveMs: record.keepAliveMs,
      keepAlivePolicy: record.keepAlivePolicy,
      reads: record.reads,
      codeBytes: record.code.length,
      registeredAtMs: record.registeredAtMs,
      concurrencyLimit: record.concurrencyLimit,
    });
    if (latest > 0) entry.latest = latest;
  }

  onRegisterFunction(envelope: Envelope, spec: PbTypes.IFunctionSpec): Effect[] {
    const name = spec.name ?? '';
    const code = Buffer.from(spec.code ?? new Uint8Array()).toString('utf8');
    const memoryMb = spec.memoryMb || 128;
    const timeoutMs = spec.timeoutMs || 60_000;
    const keepAliveMs = spec.keepAliveMs || DEFAULT_KEEP_ALIVE_MS;
    const keepAlivePolicy = (spec.keepAlivePolicy || 'fixed') as KeepAlivePolicyName;
    const reads = spec.reads ?? [];
    const sourceMap = spec.sourceMap ?? '';
    const problem = !NAME_PATTERN.test(name)
      ? `function name ${JSON.stringify(name)} must match ${NAME_PATTERN}`
      : code.length === 0 || code.length > CODE_BYTES_MAX
        ? `code must be 1 to ${CODE_BYTES_MAX} bytes`
        : memoryMb < 16 || memoryMb > 4096
          ? 'memoryMb must be 16 to 4096'
          : timeoutMs > 15 * 60_000
            ? 'timeoutMs must be at most 900000'
            : (spec.concurrency ?? 0) > 100_000
              ? 'concurrency must be at most 100000 (0: no limit)'
              : !KEEP_ALIVE_POLICIES.includes(keepAlivePolicy)
                ? `keepAlivePolicy must be one of ${KEEP_ALIVE_POLICIES.join(', ')}`
                : Buffer.byteLength(sourceMap) > SOURCE_MAP_BYTES_MAX
                  ? `the source map must be at most ${SOURCE_MAP_BYTES_MAX} bytes`
                  : readsProblem(reads);
    if (problem !== undefined) return this.host.reply(envelope, { registerFunctionResponse: { name, error: errorToWire(new LfaasError(ErrorCode.EXEC_BAD_VALUE, problem)) } });
    const record = (version: number): FunctionRecord => ({ name, version, code, memoryMb, timeoutMs, keepAliveMs, keepAlivePolicy, reads: [...reads], concurrencyLimit: spec.concurrency ?? 0, registeredAtMs: Math.floor(this.host.now()), ...(sourceMap.length > 0 ? { sourceMap } : {}) });
    return this.serialised(name, () => this.register(envelope, name, record, 0));
  }

  /**
   * Versions are numbered without a coordinator: take the latest known + 1, write the version's
   * record as a Priority (the first registration of a number wins), then read it back; if another
   * scheduler's registration won the number, take the next one.
   */
  private register(envelope: Envelope, name: string, record: (version: number) => FunctionRecord, attempt: number): Effect[] {
    const fail = (error: LfaasError): Effect[] => [...this.host.reply(envelope, { registerFunctionResponse: { name, error: errorToWire(error) } }), ...this.release(name)];
    return this.host.kvs({ op: 'get', key: functionIndexKey(name) }, (error, index) => {
      if (error !== undefined) return fail(error);
      const latest = Math.max(Number((index as AnyLattice | undefined)?.reveal() ?? 0), this.functions.get(name)?.latest ?? 0);
      const mine = record(latest + 1 + attempt);
      const stamp = this.host.clock.tick();
      return this.host.kvs({ op: 'put', key: functionKey(name, mine.version), value: new Priority(stamp.wallMs * 1024 + (stamp.logical % 1024), mine), ack: 'replicated' }, (putError) => {
        if (putError !== undefined) return fail(putError);
        return this.host.kvs({ op: 'get', key: functionKey(name, mine.version) }, (readError, stored) => {
          if (readError !== undefined) return fail(readError);
          const winner = functionRecordOf(stored as AnyLattice | undefined);
          if (winner === undefined || winner.code !== mine.code || winner.registeredAtMs !== mine.registeredAtMs) {
            return attempt < 5 ? this.register(envelope, name, record, attempt + 1) : fail(new LfaasError(ErrorCode.TRANSPORT_BUSY, `concurrent registrations of ${name}; try again`));
          }
          return this.host.kvs({ op: 'put', key: functionIndexKey(name), value: new Max(mine.version), ack: 'replicated' }, (indexError) => {
            if (indexError !== undefined) return fail(indexError);
            return this.host.kvs({ op: 'put', key: FUNCTIONS_KEY, value: GSet.of(name), ack: 'replicated' }, (listError) => {
              if (listError !== undefined) return fail(listError);
              this.host.registered();
              this.remember(mine, mine.version);
              this.entryOf(name).fetchedAtMs = this.host.now();
              return [...this.host.reply(envelope, { registerFunctionResponse: { name, version: mine.version } }), ...this.host.pin([{ name, version: mine.version }]), ...this.release(name)];
            });
          });
        });
      });
    });
  }

  /** Registrations of one name run one at a time on this scheduler. */
  private serialised(name: string, work: () => Effect[]): Effect[] {
    const queue = this.registering.get(name);
    if (queue !== undefined) {
      if (queue.length >= 100) return [];
      queue.push(work);
      return [];
    }
    this.registering.set(name, []);
    return work();
  }

  private release(name: string): Effect[] {
    const queue = this.registering.get(name);
    const next = queue?.shift();
    if (next === undefined) {
      this.registering.delete(name);
      return [];
    }
    return next();
  }

  withDag(name: string, then: (error: LfaasError | undefined, dag: { record: DagRecord; shape: DagShape } | undefined) => Effect[]): Effect[] {
    const cached = this.dags.get(name);
    if (cached !== undefined && this.host.now() - cached.fetchedAtMs <= this.ttlMs) return then(undefined, cached);
    if (!NAME_PATTERN.test(name)) return then(new LfaasError(ErrorCode.SCHED_DAG_NOT_FOUND, `no DAG is named ${JSON.stringify(name)}`), undefined);
    return this.host.kvs({ op: 'get', key: dagKey(name) }, (error, value) => {
      if (error !== undefined) return cached !== undefined ? then(undefined, cached) : then(error, undefined);
      const record = dagRecordOf(value as AnyLattice | undefined);
      if (record === undefined) {
        this.dags.delete(name);
        return then(new LfaasError(ErrorCode.SCHED_DAG_NOT_FOUND, `no DAG is named ${JSON.stringify(name)}`), undefined);
      }
      const dag = { record, shape: dagShape(record), fetchedAtMs: this.host.now() };
      this.dags.set(name, dag);
      return then(undefined, dag);
    });
  }

  onRegisterDag(envelope: Envelope, spec: PbTypes.IDagSpec): Effect[] {
    const record: DagRecord = { name: spec.name ?? '', functions: spec.functions ?? [], edges: (spec.edges ?? []).map((edge) => [edge.fromFunction ?? '', edge.toFunction ?? ''] as const) };
    let shape: DagShape;
    try {
      shape = dagShape(record);
    } catch (error) {
      return this.host.reply(envelope, { done: { error: errorToWire(error) } });
    }
    return this.withFunctions(record.functions, (error, metas) => {
      if (error !== undefined) return this.host.reply(envelope, { done: { error: errorToWire(error) } });
      const value = Lww.write(this.host.clock, { name: record.name, functions: [...record.functions], edges: record.edges.map(([from, to]) => [from, to]) });
      return this.host.kvs({ op: 'put', key: dagKey(record.name), value, ack: 'replicated' }, (putError) => {
        if (putError !== undefined) return this.host.reply(envelope, { done: { error: errorToWire(putError) } });
        return this.host.kvs({ op: 'put', key: DAGS_KEY, value: GSet.of(record.name), ack: 'replicated' }, (listError) => {
          if (listError !== undefined) return this.host.reply(envelope, { done: { error: errorToWire(listError) } });
          this.dags.set(record.name, { record, shape, fetchedAtMs: this.host.now() });
          return [...this.host.reply(envelope, { done: {} }), ...this.host.pin([...metas!.values()].map((meta) => ({ name: meta.name, version: meta.version })))];
        });
      });
    });
  }

  onListFunctions(envelope: Envelope, name: string): Effect[] {
    const fail = (error: LfaasError): Effect[] => this.host.reply(envelope, { functionList: { error: errorToWire(error) } });
    const describe = (names: readonly string[]): Effect[] =>
      this.host.kvs({ op: 'getMany', keys: names.map(functionIndexKey) }, (error, indexes) => {
        if (error !== undefined) return fail(error);
        const latests = (indexes as (AnyLattice | undefined)[]).map((value) => Number(value?.reveal() ?? 0));
        const keys: string[] = [];
        const owners: [number, number][] = [];
        latests.forEach((latest, n) => {
          for (let v = latest; v >= 1 && v > latest - VERSIONS_LISTED_MAX; v--) {
            keys.push(functionKey(names[n]!, v));
            owners.push([n, v]);
          }
        });
        if (keys.length === 0) return name.length > 0 && !name.endsWith('/') ? fail(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`)) : this.host.reply(envelope, { functionList: { functions: [] } });
        return this.host.kvs({ op: 'getMany', keys }, (readError, values) => {
          if (readError !== undefined) return fail(readError);
          const infos = new Map<number, PbTypes.IFunctionInfo & { versions: number[] }>();
          (values as (AnyLattice | undefined)[]).forEach((value, i) => {
            const record = functionRecordOf(value);
            if (record === undefined) return;
            const [n, v] = owners[i]!;
            let info = infos.get(n);
            if (info === undefined) {
              info = { name: names[n]!, latest: v, versions: [], memoryMb: record.memoryMb, timeoutMs: record.timeoutMs, keepAliveMs: record.keepAliveMs, keepAlivePolicy: record.keepAlivePolicy, reads: [...record.reads], codeBytes: Buffer.byteLength(record.code), registeredAtMs: record.registeredAtMs };
              infos.set(n, info);
            }
            info.versions.unshift(v);
          });
          const functions = [...infos.entries()].sort(([a], [b]) => a - b).map(([, info]) => info);
          if (name.length > 0 && !name.endsWith('/') && functions.length === 0) return fail(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`));
          return this.host.reply(envelope, { functionList: { functions } });
        });
      });
    // A name, or a namespace (`alice/`: its functions), or everything.
    const namespace = name.endsWith('/') ? name : undefined;
    if (name.length > 0 && namespace === undefined) return describe([name]);
    return this.host.kvs({ op: 'get', key: FUNCTIONS_KEY }, (error, list) => {
      if (error !== undefined) return fail(error);
      const names = inNamespace(((list as AnyLattice | undefined)?.reveal() as string[] | undefined) ?? [], namespace);
      return names.length === 0 ? this.host.reply(envelope, { functionList: { functions: [] } }) : describe([...names].sort().slice(0, 1000));
    });
  }

  onDeleteFunction(envelope: Envelope, name: string, version: number): Effect[] {
    const done = (error?: LfaasError): Effect[] => this.host.reply(envelope, { done: error === undefined ? {} : { error: errorToWire(error) } });
    return this.host.kvs({ op: 'get', key: functionIndexKey(name) }, (error, index) => {
      if (error !== undefined) return done(error);
      const latest = Number((index as AnyLattice | undefined)?.reveal() ?? 0);
      if (latest === 0 || version > latest) return done(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, version > 0 ? `${name} has no version ${version}` : `no function is named ${JSON.stringify(name)}`));
      // The index (the highest number given) stays, also when every version goes: a later
      // registration takes the next number, never a deleted one, whose code executors may still hold.
      const keys = version > 0 ? [functionKey(name, version)] : Array.from({ length: latest }, (_, i) => functionKey(name, i + 1));
      const remove = (): Effect[] =>
        this.host.kvs({ op: 'delete', keys }, (deleteError) => {
          if (deleteError !== undefined) return done(deleteError);
          if (version > 0) {
            this.functions.get(name)?.versions.delete(version);
            // The name now means the newest version left: read it again at the next call.
            if (this.functions.get(name)?.latest === version) this.functions.delete(name);
          } else this.functions.delete(name);
          return done();
        });
      if (version > 0) return remove();
      // Every version: a name whose versions are all gone already is not found.
      return this.host.kvs({ op: 'getMany', keys }, (readError, values) => {
        if (readError !== undefined) return done(readError);
        if ((values as (AnyLattice | undefined)[]).every((value) => value === undefined)) return done(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`));
        return remove();
      });
    });
  }

  onListDags(envelope: Envelope, name: string): Effect[] {
    const fail = (error: LfaasError): Effect[] => this.host.reply(envelope, { dagList: { error: errorToWire(error) } });
    const read = (names: readonly string[]): Effect[] =>
      this.host.kvs({ op: 'getMany', keys: names.map(dagKey) }, (error, values) => {
        if (error !== undefined) return fail(error);
        const dags = (values as (AnyLattice | undefined)[])
          .map((value) => dagRecordOf(value))
          .filter((record): record is DagRecord => record !== undefined)
          .map((record) => ({ name: record.name, functions: [...record.functions], edges: record.edges.map(([from, to]) => ({ fromFunction: from, toFunction: to })) }));
        if (name.length > 0 && namespace === undefined && dags.length === 0) return fail(new LfaasError(ErrorCode.SCHED_DAG_NOT_FOUND, `no DAG is named ${JSON.stringify(name)}`));
        return this.host.reply(envelope, { dagList: { dags } });
      });
    const namespace = name.endsWith('/') ? name : undefined;
    if (name.length > 0 && namespace === undefined) return read([name]);
    return this.host.kvs({ op: 'get', key: DAGS_KEY }, (error, list) => {
      if (error !== undefined) return fail(error);
      const names = inNamespace(((list as AnyLattice | undefined)?.reveal() as string[] | undefined) ?? [], namespace);
      return names.length === 0 ? this.host.reply(envelope, { dagList: { dags: [] } }) : read([...names].sort().slice(0, 1000));
    });
  }

  onDeleteDag(envelope: Envelope, name: string): Effect[] {
    return this.host.kvs({ op: 'delete', keys: [dagKey(name)] }, (error) => {
      this.dags.delete(name);
      return this.host.reply(envelope, { done: error === undefined ? {} : { error: errorToWire(error) } });
    });
  }
}

/** The names in `namespace` (`alice/`), or all of them without one. */
function inNamespace(names: readonly string[], namespace: string | undefined): readonly string[] {
  return namespace === undefined ? names : names.filter((name) => name.startsWith(namespace));
}
