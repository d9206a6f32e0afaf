/**
 * RunScope, the consistency modes of one run on one executor, over real ExecutorCaches. The KVS
 * behind the caches is an in-memory store (it stands for the storage tier; what is under test is
 * the scope and the cache): each executor gets its own view of one store, whose subscription
 * pushes can be held back so that its cache goes stale, and whose writes can land late.
 *
 * - lww: reads follow the cache as pushes arrive; a write after a read is later than what it read.
 * - repeatable-read: the first read pins a version; later reads (also after a push) return it; a
 *   downstream executor given the cut reads the pinned version from the holder (`fetchPinned`
 *   answered by the holder's `pinned()`); the run reads its own writes, downstream too.
 * - causal: a write's version depends on everything the run read; a read whose cache is behind the
 *   cut takes the version from the upstream holder, or waits for the KVS, and fails with a typed
 *   error when the version never comes.
 * Two fast-check properties: no read skew along random chains of executors with random external
 * writes (repeatable-read), and no read below the causal cut from stale caches (causal). And the
 * executor machine drops a run's scope once the run is answered, a one-function run too.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, HybridClock, LfaasError, Lww, MultiKeyCausal, VectorClock, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { propertyRuns } from '../lattices/testing.js';
import { encodeValue, envelopeWith, pb } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';
import { ExecutorCache } from './cache.js';
import type { CacheBackend } from './cache.js';
import { ExecutorNode } from './executor-node.js';
import type { ExecutorTask } from './host.js';
import { RunScope } from './run-scope.js';
import type { ConsistencyMode, ScopeEnvironment } from './run-scope.js';

type Listener = (key: string, value: AnyLattice | undefined) => void;

/** The storage tier in memory: one store, merged on put, pushing to subscribed views. */
class MemoryKvs {
  readonly store = new Map<string, AnyLattice>();
  private readonly views = new Set<MemoryView>();

  view(): MemoryView {
    const view = new MemoryView(this);
    this.views.add(view);
    return view;
  }

  /** Merges `value` into `key` and tells every view (which pushes it unless held back). */
  write(key: string, value: AnyLattice): void {
    const current = this.store.get(key);
    const merged = current === undefined || current.type !== value.type ? value : (current.merge(value) as AnyLattice);
    this.store.set(key, merged);
    for (const view of this.views) view.notify(key, merged);
  }

  remove(key: string): void {
    this.store.delete(key);
    for (const view of this.views) view.notify(key, undefined);
  }
}

/** One executor's connection to the store (a `CacheBackend`). */
class MemoryView implements CacheBackend {
  /** Whether pushes reach this view's subscribers (false: the cache goes stale). */
  pushes = true;
  /** How long a put takes to land in the store. */
  putDelayMs = 0;
  gets = 0;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly kvs: MemoryKvs) {}

  async get(key: string): Promise<AnyLattice | undefined> {
    this.gets++;
    await Promise.resolve();
    return this.kvs.store.get(key);
  }

  async put(key: string, value: AnyLattice): Promise<void> {
    if (this.putDelayMs > 0) setTimeout(() => this.kvs.write(key, value), this.putDelayMs).unref();
    else this.kvs.write(key, value);
  }

  async delete(key: string): Promise<void> {
    this.kvs.remove(key);
  }

  subscribe(keys: readonly string[], onUpdate: Listener): { close(): void } {
    for (const key of keys) {
      let set = this.listeners.get(key);
      if (set === undefined) this.listeners.set(key, (set = new Set()));
      set.add(onUpdate);
    }
    return {
      close: () => {
        for (const key of keys) this.listeners.get(key)?.delete(onUpdate);
      },
    };
  }

  notify(key: string, value: AnyLattice | undefined): void {
    if (!this.pushes) return;
    for (const listener of this.listeners.get(key) ?? []) listener(key, value);
  }
}

/** An executor: its cache over its own view, and the scopes of its runs (what `pinned` answers from). */
class TestExecutor {
  readonly backend: MemoryView;
  readonly cache: ExecutorCache;
  readonly scopes = new Map<string, RunScope>();
  readonly env: ScopeEnvironment;
  /** Holders asked, in order. */
  readonly asked: string[] = [];

  constructor(
    kvs: MemoryKvs,
    readonly address: string,
    peers: Map<string, TestExecutor>,
    causalWaitMs = 1000,
  ) {
    this.backend = kvs.view();
    this.cache = new ExecutorCache(this.backend);
    this.env = {
      cache: this.cache,
      clock: new HybridClock(address, () => Date.now()),
      self: address,
      writerId: address,
      causalWaitMs,
      // What the host does over the wire: the holder's scope of the run answers `pinned(key)`.
      fetchPinned: async (holder, runId, key, first) => {
        this.asked.push(`${holder} ${key}`);
        if (first === true) {
          // The run's holder pins the key now if the run has not (as the host's `pinned` task does).
          const pinned = await peers.get(holder)!.scope(runId, 'repeatable-read').pinFirst(key);
          return pinned === undefined ? undefined : (decodeOf(pinned.encode()) ?? pinned);
        }
        const scope = peers.get(holder)?.scopes.get(runId);
        if (scope === undefined) throw new LfaasError(ErrorCode.GONE, `run ${runId} holds no versions at ${holder}`);
        const pinned = scope.pinned(key);
        // Over the wire the version travels encoded.
        return pinned === undefined ? undefined : (decodeOf(pinned.encode()) ?? pinned);
      },
      readUncached: async (key) => {
        this.uncached.push(key);
        return this.backend.get(key);
      },
    };
    peers.set(address, this);
  }

  /** Keys a holder read for other executors of a run, without its cache. */
  readonly uncached: string[] = [];

  /** The run's scope here (one per run, as the host keeps it). */
  scope(runId: string, mode: ConsistencyMode): RunScope {
    let scope = this.scopes.get(runId);
    if (scope === undefined) this.scopes.set(runId, (scope = new RunScope(this.env, runId, mode)));
    return scope;
  }
}

const decodeOf = (bytes: Uint8Array): AnyLattice | undefined => decodeLattice(bytes, { verifyCanonical: false });

/** A cut as a trigger carries it: through the protobuf encoding and back. */
function overTheWire(cut: PbTypes.ICutEntry[]): PbTypes.ICutEntry[] {
  return pb.Trigger.decode(pb.Trigger.encode({ runId: 'run', cut }).finish()).cut;
}

function cluster(count: number, causalWaitMs = 1000): { kvs: MemoryKvs; executors: TestExecutor[] } {
  const kvs = new MemoryKvs();
  const peers = new Map<string, TestExecutor>();
  const executors = Array.from({ length: count }, (_, i) => new TestExecutor(kvs, `exec-${String.fromCharCode(97 + i)}`, peers, causalWaitMs));
  return { kvs, executors };
}

/** An LWW value written elsewhere, `seq` telling versions apart. */
const writer = new HybridClock('writer', () => Date.now());
const lww = (seq: number): Lww<{ seq: number }> => Lww.write(writer, { seq });
const seqOf = (value: AnyLattice | undefined): number | undefined => (value === undefined ? undefined : (value.reveal() as { seq: number }).seq);

const clock = (entries: Record<string, number>): VectorClock => VectorClock.of(entries);
/** The value of a causal version, the first of its concurrent versions. */
const causalValue = (value: AnyLattice | undefined): unknown => (value instanceof MultiKeyCausal ? value.reveal()[0] : undefined);

describe('RunScope: lww', () => {
  it('reads the newest value the cache holds, and a write after a read is later than it', async () => {
    const { kvs, executors } = cluster(1);
    const a = executors[0]!;
    kvs.write('k', lww(1));
    const scope = a.scope('run-1', 'lww');
    expect(seqOf(await scope.get('k'))).toBe(1);
    // A write elsewhere is pushed into the cache: the next read of the same run sees it.
    kvs.write('k', lww(2));
    expect(seqOf(await scope.get('k'))).toBe(2);
    expect(a.backend.gets).toBe(1);
    // A value stamped by a clock 5 s ahead: a put that follows reading it still wins.
    kvs.write('k', Lww.at({ wallMs: Date.now() + 5000, logical: 0 }, 'fast-writer', { seq: 3 }));
    expect(seqOf(await scope.get('k'))).toBe(3);
    await scope.put('k', { seq: 4 });
    expect(seqOf(kvs.store.get('k'))).toBe(4);
    expect(scope.cutOut()).toEqual([]);
  });
});

describe('RunScope: repeatable-read', () => {
  it('pins the first read of each key, whatever the cache learns later', async () => {
    const { kvs, executors } = cluster(1);
    const a = executors[0]!;
    kvs.write('k', lww(1));
    const scope = a.scope('run-1', 'repeatable-read');
    const [first, concurrent] = await Promise.all([scope.get('k'), scope.get('k')]);
    expect([seqOf(first), seqOf(concurrent)]).toEqual([1, 1]);
    kvs.write('k', lww(2));
    // The cache has the new version (a lww run reads it), the run keeps its pin.
    expect(seqOf(a.cache.peek('k'))).toBe(2);
    expect(seqOf(await a.scope('run-other', 'lww').get('k'))).toBe(2);
    expect(seqOf(await scope.get('k'))).toBe(1);
    expect(seqOf(scope.pinned('k'))).toBe(1);
    // A key that did not exist stays absent for the run.
    expect(await scope.get('absent')).toBeUndefined();
    kvs.write('absent', lww(9));
    expect(await scope.get('absent')).toBeUndefined();
    // A key the run never read has no pin to hand out.
    expect(() => scope.pinned('never-read')).toThrowError(expect.objectContaining({ code: ErrorCode.GONE }) as Error);
    // A run that starts now reads the new version.
    expect(seqOf(await a.scope('run-2', 'repeatable-read').get('k'))).toBe(2);
  });

  it('two sibling functions on different executors that both read a key first read one version: the run\'s holder pins it', async () => {
    const { kvs, executors } = cluster(3);
    const [a, b, c] = executors as [TestExecutor, TestExecutor, TestExecutor];
    kvs.write('k', lww(1));
    kvs.write('j', lww(1));
    // The run is placed on b and c; b (the lower address) holds its first reads.
    const onB = b.scope('run-1', 'repeatable-read');
    const onC = c.scope('run-1', 'repeatable-read');
    onB.holdFirstReadsAt(b.address);
    onC.holdFirstReadsAt(b.address);
    // b's function reads k first; k moves on; c's function then reads k first too: b's version.
    expect(seqOf(await onB.get('k'))).toBe(1);
    kvs.write('k', lww(2));
    expect(seqOf(await c.cache.get('k'))).toBe(2);
    expect(seqOf(await onC.get('k'))).toBe(1);
    expect(c.asked).toEqual(['exec-b k']);
    // The other order: c's function reads j first, so b pins it for the run without caching it
    // (placement follows what executors cache); b's own function later reads that version.
    expect(seqOf(await onC.get('j'))).toBe(1);
    expect(b.uncached).toEqual(['j']);
    expect(b.cache.peek('j')).toBeUndefined();
    kvs.write('j', lww(2));
    expect(seqOf(await onB.get('j'))).toBe(1);
    // Downstream of c, the cut names b as j's holder.
    expect(onC.cutOut().find((entry) => entry.key === 'j')?.holder).toBe(b.address);
    // Without a holder for the run (each executor pins its own first reads), c would have read 2.
    const alone = a.scope('run-2', 'repeatable-read');
    expect(seqOf(await alone.get('k'))).toBe(2);
  });

  it('a downstream executor given the cut reads the version pinned upstream, from its holder', async () => {
    const { kvs, executors } = cluster(3);
    const [a, b, c] = executors as [TestExecutor, TestExecutor, TestExecutor];
    kvs.write('k', lww(1));
    const upstream = a.scope('run-1', 'repeatable-read');
    expect(seqOf(await upstream.get('k'))).toBe(1);
    kvs.write('k', lww(2));
    kvs.write('j', lww(10));
    // b's cache has the newer version of k already.
    expect(seqOf(await b.cache.get('k'))).toBe(2);
    const middle = b.scope('run-1', 'repeatable-read');
    middle.absorb(overTheWire(upstream.cutOut()));
    expect(seqOf(await middle.get('k'))).toBe(1);
    expect(seqOf(await middle.get('k'))).toBe(1);
    expect(a.asked.length + b.asked.length).toBe(1);
    expect(b.asked).toEqual(['exec-a k']);
    expect(middle.counters.remoteReads).toBe(1);
    // A key first read here is pinned here, and the cut names this executor for it.
    expect(seqOf(await middle.get('j'))).toBe(10);
    const cut = overTheWire(middle.cutOut());
    expect(Object.fromEntries(cut.map((entry) => [entry.key, entry.holder]))).toEqual({ k: 'exec-a', j: 'exec-b' });
    kvs.write('j', lww(11));
    // Two hops on: each key still comes from the executor that pinned it.
    const sink = c.scope('run-1', 'repeatable-read');
    sink.absorb(cut);
    expect([seqOf(await sink.get('k')), seqOf(await sink.get('j'))]).toEqual([1, 10]);
    expect(c.asked.sort()).toEqual(['exec-a k', 'exec-b j']);
    // Once the holder has dropped the run (its runFinished), a downstream read fails typed.
    a.scopes.delete('run-1');
    const late = c.scope('run-late', 'repeatable-read');
    late.absorb([{ key: 'k', holder: 'exec-a' }]);
    await expect(late.get('k')).rejects.toMatchObject({ code: ErrorCode.GONE });
  });

  it('the run reads its own writes, downstream too', async () => {
    const { kvs, executors } = cluster(2);
    const [a, b] = executors as [TestExecutor, TestExecutor];
    // An old value (a second ago: the run's write, which does not read it first, is later).
    kvs.write('w', Lww.at({ wallMs: Date.now() - 1000, logical: 0 }, 'writer', { seq: 1 }));
    expect(seqOf(await b.cache.get('w'))).toBe(1);
    const upstream = a.scope('run-1', 'repeatable-read');
    // A write without a read before it.
    await upstream.put('w', { seq: 5 });
    expect(seqOf(await upstream.get('w'))).toBe(5);
    // A later write elsewhere does not show in the run.
    kvs.write('w', lww(6));
    expect(seqOf(await upstream.get('w'))).toBe(5);
    const downstream = b.scope('run-1', 'repeatable-read');
    downstream.absorb(overTheWire(upstream.cutOut()));
    expect(seqOf(await downstream.get('w'))).toBe(5);
    // A delete is read as absent, downstream too.
    await upstream.delete('gone');
    const after = b.scope('run-1', 'repeatable-read');
    after.absorb(overTheWire(upstream.cutOut()));
    kvs.write('gone', lww(7));
    expect(await after.get('gone')).toBeUndefined();
  });
});

describe('RunScope: causal', () => {
  it('a write depends on every version the run read before it, and dominates what it read of its key', async () => {
    const { kvs, executors } = cluster(1);
    const a = executors[0]!;
    kvs.write('x', MultiKeyCausal.write(clock({ w: 1 }), 'x1'));
    kvs.write('y', MultiKeyCausal.write(clock({ v: 3 }), 'y1', { q: clock({ w: 5 }) }));
    kvs.write('z', MultiKeyCausal.write(clock({ v: 1 }), 'z0'));
    const scope = a.scope('run-1', 'causal');
    expect(causalValue(await scope.get('x'))).toBe('x1');
    expect(causalValue(await scope.get('y'))).toBe('y1');
    await scope.put('z', 'z1');
    const z = kvs.store.get('z');
    expect(z).toBeInstanceOf(MultiKeyCausal);
    const written = z as MultiKeyCausal;
    // One version: it dominates the z it read ({v:1}), so it replaced it.
    expect(written.versions.map((version) => version.value)).toEqual(['z1']);
    expect(written.clock.reveal()).toEqual({ v: 1, 'exec-a': 1 });
    // Its dependencies: x and y as read, and q, which y depends on.
    expect(Object.fromEntries([...written.dependencies()].map(([key, depClock]) => [key, depClock.reveal()]))).toEqual({ x: { w: 1 }, y: { v: 3 }, q: { w: 5 } });
    // A second write of z supersedes the first; z is not its own dependency.
    await scope.put('z', 'z2');
    const again = kvs.store.get('z') as MultiKeyCausal;
    expect(again.reveal()).toEqual(['z2']);
    expect(again.clock.reveal()).toEqual({ v: 1, 'exec-a': 2 });
    expect(again.dependencies().has('z')).toBe(false);
    // The cut handed on carries z's new clock and the dependencies.
    const cut = Object.fromEntries(overTheWire(scope.cutOut()).map((entry) => [entry.key, entry]));
    expect(cut['z']?.holder).toBe('exec-a');
    expect(cut['z']?.clock?.entries).toEqual({ v: 1, 'exec-a': 2 });
    expect(cut['q']?.clock?.entries).toEqual({ w: 5 });
    // A causal write over a non-causal value is refused, typed.
    kvs.write('plain', lww(1));
    await expect(scope.put('plain', 'p')).rejects.toMatchObject({ code: ErrorCode.KVS_LATTICE_MISMATCH });
  });

  it('two runs on one executor that read the same version write under different clocks', async () => {
    const { kvs, executors } = cluster(1);
    const a = executors[0]!;
    kvs.write('x', MultiKeyCausal.write(clock({ w: 1 }), 'x0'));
    await Promise.all([a.scope('run-1', 'causal').put('x', 'one'), a.scope('run-2', 'causal').put('x', 'two')]);
    const x = kvs.store.get('x') as MultiKeyCausal;
    // Had both taken {w:1}.increment('exec-a'), both values would sit under one clock, and a run
    // depending on one would be satisfied by a cache holding only the other.
    const clocks = x.versions.map((version) => JSON.stringify(version.clock.reveal()));
    expect(new Set(clocks).size).toBe(clocks.length);
    expect(x.reveal()).toEqual(['two']);
    expect(x.clock.reveal()).toEqual({ w: 1, 'exec-a': 2 });
  });

  it('a read whose cache is behind the cut waits until the KVS has the version', async () => {
    const { kvs, executors } = cluster(2);
    const [a, b] = executors as [TestExecutor, TestExecutor];
    kvs.write('x', MultiKeyCausal.write(clock({ w: 1 }), 'x1'));
    // b caches x at {w:1} and then hears of no writes.
    expect(causalValue(await b.cache.get('x'))).toBe('x1');
    b.backend.pushes = false;
    // y was written after x2, depending on it; a's run reads y.
    kvs.write('y', MultiKeyCausal.write(clock({ w: 3 }), 'y1', { x: clock({ w: 2 }) }));
    const upstream = a.scope('run-1', 'causal');
    expect(causalValue(await upstream.get('y'))).toBe('y1');
    // x2 lands in the KVS a little later (replication lag), and is not pushed to b.
    setTimeout(() => kvs.write('x', MultiKeyCausal.write(clock({ w: 2 }), 'x2')), 40);
    const downstream = b.scope('run-1', 'causal');
    downstream.absorb(overTheWire(upstream.cutOut()));
    expect(causalValue(await downstream.get('x'))).toBe('x2');
    expect(downstream.counters.causalWaits).toBe(1);
    // What b's cache holds moved up with it.
    expect(causalValue(b.cache.peek('x'))).toBe('x2');
  });

  it('takes a version its KVS does not have yet from the upstream holder', async () => {
    const { kvs, executors } = cluster(2);
    const [a, b] = executors as [TestExecutor, TestExecutor];
    kvs.write('x', MultiKeyCausal.write(clock({ w: 1 }), 'x1'));
    expect(causalValue(await b.cache.get('x'))).toBe('x1');
    // a's writes take 10 s to reach the store: only a's cache has them.
    a.backend.putDelayMs = 10_000;
    const upstream = a.scope('run-1', 'causal');
    expect(causalValue(await upstream.get('x'))).toBe('x1');
    await upstream.put('x', 'x2');
    expect(causalValue(kvs.store.get('x'))).toBe('x1');
    const downstream = b.scope('run-1', 'causal');
    downstream.absorb(overTheWire(upstream.cutOut()));
    expect(causalValue(await downstream.get('x'))).toBe('x2');
    expect(b.asked).toEqual(['exec-a x']);
    expect(downstream.counters).toMatchObject({ causalWaits: 1, remoteReads: 1 });
    expect(causalValue(b.cache.peek('x'))).toBe('x2');
  });

  it('fails with a typed error when the version the run depends on never comes', async () => {
    const { kvs, executors } = cluster(2, 150);
    const [a, b] = executors as [TestExecutor, TestExecutor];
    kvs.write('x', MultiKeyCausal.write(clock({ w: 1 }), 'x1'));
    kvs.write('y', MultiKeyCausal.write(clock({ w: 3 }), 'y1', { x: clock({ w: 2 }) }));
    const upstream = a.scope('run-1', 'causal');
    await upstream.get('y');
    const downstream = b.scope('run-1', 'causal');
    downstream.absorb(overTheWire(upstream.cutOut()));
    const error = await downstream.get('x').then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(LfaasError);
    expect((error as LfaasError).code).toBe(ErrorCode.TRANSPORT_TIMEOUT);
    // It kept asking the KVS, boundedly.
    expect(b.backend.gets).toBeGreaterThan(1);
  });
});

describe('RunScope properties', () => {
  const runs = propertyRuns(40);

  /** One step of a run: a read at the current stage, an external write, or the trigger on to the next executor. */
  type Step = { readonly op: 'read'; readonly key: number } | { readonly op: 'write'; readonly key: number } | { readonly op: 'next'; readonly to: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ op: fc.constant('read' as const), key: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ op: fc.constant('write' as const), key: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ op: fc.constant('next' as const), to: fc.integer({ min: 0, max: 2 }) }),
  );

  it('repeatable-read: every read of a key in a run returns its first version, across executors and external writes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), fc.boolean(), async (steps, stalePushes) => {
        const { kvs, executors } = cluster(3);
        if (stalePushes) for (const executor of executors) executor.backend.pushes = false;
        let seq = 0;
        for (let key = 0; key < 4; key++) kvs.write(`k${key}`, lww(++seq));
        let scope = executors[0]!.scope('run', 'repeatable-read');
        const first = new Map<number, number | undefined>();
        for (const next of steps) {
          if (next.op === 'write') kvs.write(`k${next.key}`, lww(++seq));
          else if (next.op === 'next') {
            const cut = overTheWire(scope.cutOut());
            scope = executors[next.to]!.scope('run', 'repeatable-read');
            scope.absorb(cut);
          } else {
            const read = seqOf(await scope.get(`k${next.key}`));
            if (!first.has(next.key)) first.set(next.key, read);
            expect(read).toBe(first.get(next.key));
          }
        }
      }),
      { numRuns: runs },
    );
  });

  it('causal: a chain of executors with stale caches never reads below its cut', async () => {
    /** Writers (runs that read some keys and write one), then a reader chain. */
    const write = fc.record({ at: fc.integer({ min: 0, max: 2 }), reads: fc.subarray([0, 1, 2, 3]), key: fc.integer({ min: 0, max: 3 }) });
    const read = fc.record({ at: fc.integer({ min: 0, max: 2 }), key: fc.integer({ min: 0, max: 3 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 12 }), fc.array(read, { minLength: 1, maxLength: 12 }), async (writes, reads) => {
        const { kvs, executors } = cluster(3, 500);
        // Every executor first caches every key (as it stands: absent) and then hears nothing:
        // only the causal wait's refreshes, or an upstream holder, bring newer versions.
        for (let key = 0; key < 4; key++) kvs.write(`k${key}`, MultiKeyCausal.write(clock({ init: 1 }), `k${key}@init`));
        for (const executor of executors) {
          for (let key = 0; key < 4; key++) await executor.cache.get(`k${key}`);
          executor.backend.pushes = false;
        }
        for (const [n, w] of writes.entries()) {
          const scope = executors[w.at]!.scope(`writer-${n}`, 'causal');
          for (const key of w.reads) await scope.get(`k${key}`);
          await scope.put(`k${w.key}`, `k${w.key}@${n}`);
        }
        let scope = executors[reads[0]!.at]!.scope('reader', 'causal');
        /** What the run must see at least, per key: the clocks read and what they depend on. */
        const floor = new Map<string, VectorClock>();
        for (const r of reads) {
          if (executors[r.at]!.scopes.get('reader') !== scope) {
            const cut = overTheWire(scope.cutOut());
            scope = executors[r.at]!.scope('reader', 'causal');
            scope.absorb(cut);
          }
          const key = `k${r.key}`;
          const value = await scope.get(key);
          expect(value).toBeInstanceOf(MultiKeyCausal);
          const causal = value as MultiKeyCausal;
          const need = floor.get(key);
          if (need !== undefined) expect(need.leq(causal.clock)).toBe(true);
          floor.set(key, (floor.get(key) ?? VectorClock.EMPTY).merge(causal.clock));
          for (const [dependency, depClock] of causal.dependencies()) floor.set(dependency, (floor.get(dependency) ?? VectorClock.EMPTY).merge(depClock));
        }
      }),
      { numRuns: runs },
    );
  });
});

describe('the executor ends a run\'s scope with the run', () => {
  it.each([
    ['repeatable-read', pb.Consistency.REPEATABLE_READ],
    ['causal', pb.Consistency.CAUSAL],
  ] as const)('a %s call of one function: once answered, its scope is dropped', (_mode, consistency) => {
    const node = new ExecutorNode({ address: 'exec-a' });
    node.handle({ kind: 'start' }, 0);
    const schedule = { runId: 'run-1', functions: [{ name: 'f', version: 1, executor: 'exec-a', successors: [] }], consistency, replyTo: 'client', replyRequestId: 7, timeoutMs: 1000, scheduler: 'sched' };
    const started = node.handle({ kind: 'message', envelope: envelopeWith({ schedule }, { sender: 'sched' }) }, 1);
    const run = started.find((effect) => effect.kind === 'task' && (effect.task as ExecutorTask).op === 'run');
    expect(run?.kind).toBe('task');
    const answered = node.handle({ kind: 'taskDone', token: run!.kind === 'task' ? run!.token : -1, result: { value: encodeValue(1), cut: [] } }, 2);
    expect(answered.some((effect) => effect.kind === 'send' && effect.envelope.callResponse !== undefined && effect.envelope.callResponse !== null)).toBe(true);
    // Without it the scope (its pins or its cut) stayed in the host until `scopesMax` pushed it out:
    // a run of one function has no deadline timer to drop it.
    const ends = answered.filter((effect) => effect.kind === 'task' && (effect.task as ExecutorTask).op === 'endRun');
    expect(ends.map((effect) => (effect.kind === 'task' ? (effect.task as { runId: string }).runId : ''))).toEqual(['run-1']);
  });
});
