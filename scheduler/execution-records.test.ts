/**
 * The records a scheduler keeps so that async calls outlive it (execution-records.ts): an
 * execution record decodes, through its bytes, to what was written (a fast-check round trip over
 * calls and DAGs of any shape the registry allows); a stored record of any other shape is refused
 * with LATTICE_DECODE and nothing else (a fast-check property over random mutations, then a table
 * of hostile records: another call's id or result key, a cycle, two sinks, edges that disagree,
 * fields out of range); an oversized record is refused at write time with EXEC_BAD_VALUE; the
 * index, boots, lease and epoch readers skip and count what does not decode; and an index entry
 * removed by another writer stays removed whatever the merge order, once the remover observed the
 * add's timestamp.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Counter, GSet, HybridClock, LfaasError, Lww, MapLattice, Max, Priority, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { resultKeyOf } from '../protocol/index.js';
import {
  RUN_RECORD_BYTES_MAX,
  bootEntry,
  bootsKey,
  decodeRunRecord,
  encodeRunRecord,
  indexEntry,
  indexKey,
  leaseKey,
  leaseValue,
  readBoots,
  readEpoch,
  readIndex,
  readLease,
  runRecordValue,
} from './execution-records.js';
import type { RecordedArgument, RecordedFunction, RunRecord } from './execution-records.js';

const NOW = 1_700_000_000_000;
const clock = new HybridClock('tcp://127.0.0.1:7400', () => NOW);
/** Through the bytes, as a reader of the KVS gets it. */
const stored = (lattice: AnyLattice): AnyLattice => decodeLattice(lattice.encode());

const codeOf = (act: () => unknown): string | undefined => {
  try {
    act();
  } catch (error) {
    return error instanceof LfaasError ? error.code : `not an LfaasError: ${String(error)}`;
  }
  return undefined;
};

const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/);
const argument: fc.Arbitrary<RecordedArgument> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((value) => ({ value })),
  fc.string({ minLength: 1, maxLength: 30 }).map((reference) => ({ reference })),
);

/**
 * The functions of a run: one function, or a DAG of 2-6 whose edges go from earlier to later
 * functions and where every function but the last has a successor (so the last is the one sink);
 * each function's parents in a random order (the order of their results in its arguments).
 */
const functionsOf: fc.Arbitrary<{ dag: string; functions: RecordedFunction[] }> = fc
  .tuple(fc.uniqueArray(name, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.infiniteStream(fc.nat()), fc.infiniteStream(fc.array(argument, { maxLength: 4 })), name)
  .map(([names, oneFunction, randoms, argsStream, dagName]) => {
    const list = oneFunction ? names.slice(0, 1) : names;
    const random = randoms[Symbol.iterator]();
    const args = argsStream[Symbol.iterator]();
    const next = (): number => random.next().value as number;
    const parents = new Map<string, string[]>(list.map((n) => [n, []]));
    list.forEach((from, i) => {
      if (i === list.length - 1) return;
      const successors = new Set<string>();
      successors.add(list[i + 1 + (next() % (list.length - i - 1))]!);
      for (let j = i + 1; j < list.length; j++) if (next() % 3 === 0) successors.add(list[j]!);
      for (const to of successors) parents.get(to)!.push(from);
    });
    for (const [to, ps] of parents) parents.set(to, ps.sort(() => (next() % 2 === 0 ? -1 : 1)));
    const functions = list.map((n): RecordedFunction => ({
      name: n,
      version: 1 + (next() % 1000),
      args: args.next().value as RecordedArgument[],
      successors: list.filter((other) => parents.get(other)!.includes(n)),
      parents: parents.get(n)!,
      concurrencyLimit: next() % 3,
    }));
    return { dag: list.length === 1 && oneFunction ? '' : dagName, functions };
  });

const recordArb: fc.Arbitrary<RunRecord> = fc
  .record({
    callId: fc.string({ minLength: 1, maxLength: 40 }),
    owner: fc.string({ minLength: 1, maxLength: 60 }),
    state: fc.constantFrom('accepted' as const, 'running' as const, 'done' as const),
    attempt: fc.integer({ min: 1, max: 1000 }),
    run: functionsOf,
    consistency: fc.integer({ min: 0, max: 3 }),
    timeoutMs: fc.integer({ min: 0, max: 0xffff_ffff }),
    traceId: fc.string({ maxLength: 32 }),
    executor: fc.string({ maxLength: 40 }),
    atMs: fc.nat(),
  })
  .map(({ run, callId, ...rest }) => ({ ...rest, callId, dag: run.dag, functions: run.functions, resultKey: resultKeyOf(callId) }));

const sample: RunRecord = {
  callId: 'c1',
  owner: 'tcp://127.0.0.1:7400#boot1',
  state: 'accepted',
  attempt: 1,
  dag: 'diamond',
  functions: [
    { name: 'inc', version: 1, args: [{ value: Uint8Array.of(1) }], successors: ['double', 'square'], parents: [], concurrencyLimit: 0 },
    { name: 'double', version: 2, args: [], successors: ['sub'], parents: ['inc'], concurrencyLimit: 0 },
    { name: 'square', version: 1, args: [{ reference: 'k' }], successors: ['sub'], parents: ['inc'], concurrencyLimit: 2 },
    { name: 'sub', version: 1, args: [], successors: [], parents: ['square', 'double'], concurrencyLimit: 0 },
  ],
  consistency: 1,
  timeoutMs: 3000,
  resultKey: resultKeyOf('c1'),
  traceId: 't',
  executor: '',
  atMs: NOW,
};

/** The sample's stored value with `change` applied, as an Lww written by another. */
function hostile(change: (value: Record<string, unknown>) => void): Lww {
  const value = structuredClone(runRecordValue(sample));
  change(value);
  return Lww.at({ wallMs: NOW, logical: 0 }, 'someone', value);
}

const functionsOfValue = (value: Record<string, unknown>): Record<string, unknown>[] => value['functions'] as Record<string, unknown>[];

describe('execution records', () => {
  it('decode, through their bytes, to what was written (calls and DAGs of any shape)', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        const { value, bytes } = encodeRunRecord(clock, record);
        expect(bytes).toBe(value.encode().byteLength);
        expect(decodeRunRecord(stored(value), record.callId)).toEqual(record);
      }),
      { numRuns: 300 },
    );
  });

  it('refuse a stored record of any other shape with LATTICE_DECODE, and nothing else', () => {
    const paths = (value: Record<string, unknown>): (readonly (string | number)[])[] => {
      const out: (readonly (string | number)[])[] = [];
      const walk = (node: unknown, path: (string | number)[]): void => {
        out.push(path);
        if (node instanceof Uint8Array) return;
        if (Array.isArray(node)) node.forEach((child, i) => walk(child, [...path, i]));
        else if (typeof node === 'object' && node !== null) for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
      };
      walk(value, []);
      return out.filter((path) => path.length > 0);
    };
    fc.assert(
      fc.property(recordArb, fc.nat(), fc.oneof(fc.anything(), fc.constant(undefined), fc.string(), fc.integer(), fc.constant(-1), fc.constant(2 ** 60)), (record, pick, replacement) => {
        const value = runRecordValue(record);
        const all = paths(value);
        const path = all[pick % all.length]!;
        let parent: Record<string | number, unknown> = value as Record<string | number, unknown>;
        for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
        parent[path[path.length - 1]!] = replacement;
        let lattice: Lww;
        try {
          lattice = Lww.at({ wallMs: NOW, logical: 0 }, 'someone', value);
        } catch {
          return; // no lattice can hold it (the codec refuses it at the writer)
        }
        let decoded: RunRecord | undefined;
        try {
          decoded = decodeRunRecord(stored(lattice), record.callId);
        } catch (error) {
          expect(error).toBeInstanceOf(LfaasError);
          expect((error as LfaasError).code).toBe('LATTICE_DECODE');
          return;
        }
        // A change the record survives (a value replaced by an equal one, an argument by another
        // argument...): what decodes is a record in range, written again unchanged.
        expect(decoded).toBeDefined();
        expect(decodeRunRecord(stored(encodeRunRecord(clock, decoded!).value), record.callId)).toEqual(decoded);
      }),
      { numRuns: 1000 },
    );
  });

  it.each<[string, () => AnyLattice]>([
    ['another call\'s record', () => Lww.write(clock, runRecordValue({ ...sample, callId: 'c2', resultKey: resultKeyOf('c2') }))],
    ['a result key of another call', () => hostile((v) => (v['resultKey'] = resultKeyOf('c2')))],
    ['a result key that is a registry record', () => hostile((v) => (v['resultKey'] = 'lfaas/function/f@1'))],
    ['no version', () => hostile((v) => delete v['v'])],
    ['version 2', () => hostile((v) => (v['v'] = 2))],
    ['an unknown state', () => hostile((v) => (v['state'] = 'lost'))],
    ['attempt 0', () => hostile((v) => (v['attempt'] = 0))],
    ['attempt beyond the bound', () => hostile((v) => (v['attempt'] = 1001))],
    ['a fractional attempt', () => hostile((v) => (v['attempt'] = 1.5))],
    ['consistency 4', () => hostile((v) => (v['consistency'] = 4))],
    ['a negative timeout', () => hostile((v) => (v['timeoutMs'] = -1))],
    ['an empty owner', () => hostile((v) => (v['owner'] = ''))],
    ['an owner of 401 characters', () => hostile((v) => (v['owner'] = 'x'.repeat(401)))],
    ['a DAG name that is no name', () => hostile((v) => (v['dag'] = '../x'))],
    ['no functions (not done)', () => hostile((v) => (v['functions'] = []))],
    ['a function call of two functions', () => hostile((v) => (v['dag'] = ''))],
    ['a function named twice', () => hostile((v) => (functionsOfValue(v)[1]!['name'] = 'inc'))],
    ['a cycle', () => hostile((v) => ((functionsOfValue(v)[0]!['parents'] = ['sub']), (functionsOfValue(v)[3]!['successors'] = ['inc'])))],
    ['two sinks', () => hostile((v) => ((functionsOfValue(v)[1]!['successors'] = []), (functionsOfValue(v)[3]!['parents'] = ['square'])))],
    ['successors that disagree with the parents', () => hostile((v) => (functionsOfValue(v)[1]!['successors'] = ['square']))],
    ['a parent the run does not list', () => hostile((v) => (functionsOfValue(v)[3]!['parents'] = ['square', 'double', 'ghost']))],
    ['a parent listed twice', () => hostile((v) => (functionsOfValue(v)[3]!['parents'] = ['square', 'square']))],
    ['version 0', () => hostile((v) => (functionsOfValue(v)[0]!['version'] = 0))],
    ['an argument with both forms', () => hostile((v) => (functionsOfValue(v)[0]!['args'] = [{ v: Uint8Array.of(1), r: 'k' }]))],
    ['an argument value that is no bytes', () => hostile((v) => (functionsOfValue(v)[0]!['args'] = [{ v: 'bytes' }]))],
    ['an empty reference', () => hostile((v) => (functionsOfValue(v)[0]!['args'] = [{ r: '' }]))],
    ['4,097 arguments', () => hostile((v) => (functionsOfValue(v)[0]!['args'] = Array.from({ length: 4097 }, () => ({ r: 'k' }))))],
    ['65 functions', () => hostile((v) => (v['functions'] = Array.from({ length: 65 }, (_, i) => ({ name: `f${i}`, version: 1, args: [], successors: [], parents: [], limit: 0 }))))],
    ['a record that is not an object', () => Lww.write(clock, ['v', 1])],
    ['a Priority, not an Lww', () => new Priority(1, runRecordValue(sample))],
    ['a GSet', () => GSet.of(1, 2)],
  ])('refuses %s with LATTICE_DECODE', (_what, make) => {
    expect(codeOf(() => decodeRunRecord(stored(make()), 'c1'))).toBe('LATTICE_DECODE');
  });

  it('reads an absent record as undefined, and a done record with or without its functions', () => {
    expect(decodeRunRecord(undefined, 'c1')).toBeUndefined();
    const done: RunRecord = { ...sample, state: 'done', functions: sample.functions.map((fn) => ({ ...fn, args: [] })) };
    expect(decodeRunRecord(stored(encodeRunRecord(clock, done).value), 'c1')).toEqual(done);
    const bare: RunRecord = { ...sample, state: 'done', functions: [] };
    expect(decodeRunRecord(stored(encodeRunRecord(clock, bare).value), 'c1')).toEqual(bare);
  });

  it('refuses to write a record over the KVS value limit (EXEC_BAD_VALUE), and one too large on read', () => {
    const big: RunRecord = { ...sample, functions: [{ ...sample.functions[0]!, args: [{ value: new Uint8Array(RUN_RECORD_BYTES_MAX) }] }, ...sample.functions.slice(1)] };
    expect(codeOf(() => encodeRunRecord(clock, big))).toBe('EXEC_BAD_VALUE');
    const tooMany: RunRecord = { ...sample, functions: [{ ...sample.functions[0]!, args: Array.from({ length: 4097 }, () => ({ reference: 'k' })) }, ...sample.functions.slice(1)] };
    expect(codeOf(() => encodeRunRecord(clock, tooMany))).toBe('EXEC_BAD_VALUE');
    // Written by someone else anyway: refused on read.
    expect(codeOf(() => decodeRunRecord(Lww.write(clock, runRecordValue(big)), 'c1'))).toBe('LATTICE_DECODE');
  });

  it('keys', () => {
    expect(leaseKey('tcp://h:1#a')).toBe('lfaas/sched/lease/tcp://h:1#a');
    expect(indexKey('tcp://h:1#a', 3)).toBe('lfaas/sched/index/3/tcp://h:1#a');
    expect(bootsKey(2)).toBe('lfaas/sched/boots/2');
  });
});

describe('index, boots, lease and epoch readers', () => {
  it('read an index: pending entries with their sizes, removed ones counted, malformed ones skipped and counted', () => {
    let index = indexEntry(clock, 'a', 10).merge(indexEntry(clock, 'b', 20)).merge(indexEntry(clock, 'c', 30));
    index = index.merge(indexEntry(clock, 'b', 0));
    index = index.set('', Lww.write(clock, 5)).set('d', Lww.write(clock, 'five')).set('e', Lww.write(clock, -1)).set('f', new Max(3)).set('g', Lww.write(clock, RUN_RECORD_BYTES_MAX + 1));
    const view = readIndex(stored(index));
    expect(view.pending.map((entry) => [entry.callId, entry.bytes])).toEqual([
      ['a', 10],
      ['c', 30],
    ]);
    expect(view.removed).toBe(1);
    expect(view.malformed).toBe(5);
    expect(readIndex(undefined)).toEqual({ pending: [], removed: 0, malformed: 0 });
    expect(codeOf(() => readIndex(GSet.of('a')))).toBe('LATTICE_DECODE');
    expect(readIndex(stored(index), 1).pending).toHaveLength(1);
  });

  it('read boots: the union of epochs, merged per boot; what is no Map or no 0/1 entry is skipped and counted', () => {
    const older = new HybridClock('w', () => NOW - 1000);
    const epoch0 = bootEntry(older, 'a#1', true).merge(bootEntry(older, 'b#1', true));
    const epoch1 = bootEntry(clock, 'a#1', false).merge(bootEntry(clock, 'c#1', true)).set('d#1', Lww.write(clock, 7)).set('', Lww.write(clock, 1)).set('e#1', Counter.ZERO.increment('x'));
    const { boots, malformed } = readBoots([stored(epoch0), undefined, stored(epoch1), new Max(1)], 100);
    expect([...boots].map(([boot, entry]) => [boot, entry.live])).toEqual([
      ['a#1', false],
      ['b#1', true],
      ['c#1', true],
    ]);
    expect(malformed).toBe(4);
    expect(readBoots([stored(epoch0), stored(epoch1)], 2).boots.size).toBe(2);
  });

  it('read a lease and the epoch; anything else is LATTICE_DECODE', () => {
    const lease = readLease(stored(leaseValue(clock, 7, 2)));
    expect(lease?.gen).toBe(2);
    expect(lease?.version).toContain('.7');
    expect(readLease(undefined)).toBeUndefined();
    for (const bad of [Lww.write(clock, { n: -1, gen: 0 }), Lww.write(clock, { n: 1, gen: 2 ** 41 }), Lww.write(clock, 'lease'), new Max(1)]) expect(codeOf(() => readLease(bad))).toBe('LATTICE_DECODE');
    expect(readEpoch(undefined)).toBe(0);
    expect(readEpoch(new Max(3))).toBe(3);
    for (const bad of [new Max(1.5), new Max(-1), Lww.write(clock, 3)]) expect(codeOf(() => readEpoch(bad))).toBe('LATTICE_DECODE');
  });

  it('an entry removed by another writer stays removed whatever the merge order, once the remover observed the add', () => {
    fc.assert(
      fc.property(fc.integer({ min: -5000, max: 5000 }), fc.integer({ min: 0, max: 5 }), fc.boolean(), (skewMs, otherAdds, reversed) => {
        const owner = new HybridClock('owner', () => NOW);
        const taker = new HybridClock('taker', () => NOW + skewMs);
        const add = indexEntry(owner, 'run', 100);
        const others = Array.from({ length: otherAdds }, (_, i) => indexEntry(owner, `other${i}`, 10));
        // The taker read the add, folded its timestamp in, then wrote the removal.
        taker.observe((add.get('run') as Lww).timestamp);
        const removal = indexEntry(taker, 'run', 0);
        const writes = [add, ...others, removal];
        const merged = (reversed ? writes.reverse() : writes).reduce((a, b) => a.merge(b), MapLattice.EMPTY);
        const view = readIndex(stored(merged));
        expect(view.pending.map((entry) => entry.callId)).toEqual(Array.from({ length: otherAdds }, (_, i) => `other${i}`).sort());
        expect(view.removed).toBe(1);
      }),
      { numRuns: 200 },
    );
  });
});
