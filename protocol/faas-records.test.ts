/**
 * The FaaS registry's records in the KVS: each decodes from the lattice it is stored as, through
 * its bytes (encode, decodeLattice), to what was written (a fast-check round trip for function
 * records), with defaults for fields older writers left out; a stored value of the wrong shape
 * is refused with LATTICE_DECODE, never turned into a wrong record. And the keys.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HybridClock, Lww, Max, Priority, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import {
  DAGS_KEY,
  FUNCTIONS_KEY,
  NAME_PATTERN,
  dagKey,
  dagRecordOf,
  executionKey,
  functionIndexKey,
  functionKey,
  functionRecordOf,
  resultKeyOf,
  resultRecordOf,
} from './faas-records.js';
import type { DagRecord, FunctionRecord, ResultRecord } from './faas-records.js';

/** Through the bytes, as a reader of the KVS gets it. */
const stored = (lattice: AnyLattice): AnyLattice => decodeLattice(lattice.encode());
const clock = new HybridClock('test', () => 1_700_000_000_000);

const codeOf = (act: () => unknown): string | undefined => {
  try {
    act();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

const record: FunctionRecord = { name: 'square', version: 3, code: 'module.exports = (x) => x * x;', memoryMb: 256, timeoutMs: 5000, keepAliveMs: 30_000, keepAlivePolicy: 'adaptive', reads: ['model/weights', 'user/*'], concurrencyLimit: 0, registeredAtMs: 1_700_000_000_123 };

const functionRecordArbitrary: fc.Arbitrary<FunctionRecord> = fc.record({
  name: fc.stringMatching(NAME_PATTERN),
  version: fc.integer({ min: 1, max: 2 ** 31 }),
  code: fc.string({ unit: 'grapheme', maxLength: 200 }),
  memoryMb: fc.integer({ min: 16, max: 4096 }),
  timeoutMs: fc.integer({ min: 1, max: 900_000 }),
  keepAliveMs: fc.integer({ min: 0, max: 24 * 3_600_000 }),
  keepAlivePolicy: fc.constantFrom('fixed' as const, 'adaptive' as const),
  reads: fc.array(fc.oneof(fc.string({ minLength: 1, maxLength: 40 }).filter((key) => !key.includes('*')), fc.string({ minLength: 1, maxLength: 40 }).filter((key) => !key.includes('*')).map((prefix) => `${prefix}*`)), { maxLength: 32 }),
  concurrencyLimit: fc.integer({ min: 0, max: 1000 }),
  registeredAtMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});

describe('FaaS records', () => {
  it('names its keys', () => {
    expect(FUNCTIONS_KEY).toBe('lfaas/functions');
    expect(DAGS_KEY).toBe('lfaas/dags');
    expect(functionIndexKey('square')).toBe('lfaas/function/square');
    expect(functionKey('square', 3)).toBe('lfaas/function/square@3');
    expect(dagKey('compose')).toBe('lfaas/dag/compose');
    expect(executionKey('c1')).toBe('lfaas/exec/c1');
    expect(resultKeyOf('c1')).toBe('lfaas/result/c1');
    // A name carries at most one separator (after an owner's namespace) and no @ (a version), so
    // keys of different names never meet.
    for (const name of ['a/b/c', 'A/b', '/b', 'a/', 'a@1', 'alice/b@1', '', '1a', 'a b']) expect(NAME_PATTERN.test(name), name).toBe(false);
    for (const name of ['a', 'A_b-c.d', '_x', 'x'.repeat(128), 'alice/resize', '0-team_x/f.v2']) expect(NAME_PATTERN.test(name), name).toBe(true);
    expect(NAME_PATTERN.test('x'.repeat(129))).toBe(false);
  });

  it('function records round-trip through a Priority (as the scheduler writes them) and an Lww', () => {
    expect(functionRecordOf(stored(new Priority(1_740_000_000_000 * 1024, record)))).toEqual(record);
    expect(functionRecordOf(stored(Lww.write(clock, record)))).toEqual(record);
    fc.assert(
      fc.property(functionRecordArbitrary, fc.integer({ min: 0, max: 2 ** 52 }), (written, priority) => {
        expect(functionRecordOf(stored(new Priority(priority, written)))).toEqual(written);
      }),
      { numRuns: 200 },
    );
    expect(functionRecordOf(undefined)).toBeUndefined();
  });

  it('fills in the defaults of the fields a function record leaves out', () => {
    const minimal = functionRecordOf(stored(new Priority(1, { name: 'old', version: 1, code: 'module.exports = () => 1;' })));
    expect(minimal).toEqual({ name: 'old', version: 1, code: 'module.exports = () => 1;', memoryMb: 128, timeoutMs: 60_000, keepAliveMs: 15 * 60_000, keepAlivePolicy: 'fixed', reads: [], concurrencyLimit: 0, registeredAtMs: 0 });
    // A record from before the limit was enforced says `concurrency: 1`: it limited nothing then, and does not now.
    expect(functionRecordOf(stored(new Priority(1, { name: 'old', version: 1, code: 'x', concurrency: 1 })))?.concurrencyLimit).toBe(0);
    // A null field counts as left out.
    expect(functionRecordOf(stored(new Priority(1, { ...record, timeoutMs: null })))?.timeoutMs).toBe(60_000);
  });

  it('refuses a function record of the wrong shape with LATTICE_DECODE', () => {
    const wrong: unknown[] = [
      'just a string',
      42,
      null,
      [record],
      { ...record, name: 7 },
      { ...record, code: undefined },
      { ...record, code: new Uint8Array([1]) },
      { ...record, version: '3' },
      { ...record, version: 1.5 },
      { ...record, memoryMb: 'lots' },
      { ...record, keepAliveMs: [1] },
      { ...record, registeredAtMs: { at: 1 } },
      { ...record, keepAlivePolicy: 'forever' },
      { ...record, keepAlivePolicy: 1 },
      { ...record, reads: 'model' },
      { ...record, reads: [7] },
      { ...record, reads: [''] },
      { ...record, reads: ['*'] },
      { ...record, reads: ['a*b'] },
      { ...record, reads: Array.from({ length: 33 }, (_, i) => `k${i}`) },
      { ...record, reads: ['x'.repeat(1025)] },
    ];
    for (const value of wrong) {
      // `undefined` fields are dropped by the codec: give them as absent.
      const clean = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) : value;
      expect(codeOf(() => functionRecordOf(stored(new Priority(1, clean)))), JSON.stringify(clean)).toBe('LATTICE_DECODE');
    }
  });

  it('DAG records round-trip through an Lww (as the scheduler writes them)', () => {
    const dag: DagRecord = { name: 'diamond', functions: ['a', 'b', 'c', 'd'], edges: [['a', 'b'], ['a', 'c'], ['b', 'd'], ['c', 'd']] };
    expect(dagRecordOf(stored(Lww.write(clock, dag)))).toEqual(dag);
    expect(dagRecordOf(stored(Lww.write(clock, { name: 'alone', functions: ['x'], edges: [] })))).toEqual({ name: 'alone', functions: ['x'], edges: [] });
    expect(dagRecordOf(undefined)).toBeUndefined();
  });

  it('refuses a DAG record of the wrong shape with LATTICE_DECODE', () => {
    const good = { name: 'd', functions: ['a', 'b'], edges: [['a', 'b']] };
    const wrong: unknown[] = [
      'd',
      { ...good, name: 1 },
      { name: 'd', edges: [] },
      { ...good, functions: 'a,b' },
      { ...good, edges: { a: 'b' } },
      { ...good, edges: [['a']] },
      { ...good, edges: [['a', 'b', 'c']] },
      { ...good, edges: ['ab'] },
      { ...good, edges: [['a', 2]] },
      { ...good, functions: ['a', { name: 'b' }] },
      { ...good, functions: [1, 2] },
    ];
    for (const value of wrong) expect(codeOf(() => dagRecordOf(stored(Lww.write(clock, value)))), JSON.stringify(value)).toBe('LATTICE_DECODE');
  });

  it('result records round-trip through a Priority by attempt, and the first attempt wins', () => {
    const value = new Uint8Array([0x92, 0x01, 0x02]);
    const ok: ResultRecord = { ok: true, value };
    const failed: ResultRecord = { ok: false, code: 'EXEC_USER_ERROR', message: 'Error: boom' };
    const decodedOk = resultRecordOf(stored(new Priority(1, ok)));
    expect(decodedOk).toEqual(ok);
    expect((decodedOk as { value: Uint8Array }).value).toBeInstanceOf(Uint8Array);
    expect(resultRecordOf(stored(new Priority(2, failed)))).toEqual(failed);
    // Attempt 2 wrote a result too (a re-dispatched call): attempt 1's stays, whatever the merge order.
    const first = new Priority<ResultRecord>(1, ok);
    const second = new Priority<ResultRecord>(2, failed);
    expect(resultRecordOf(stored(first.merge(second)))).toEqual(ok);
    expect(resultRecordOf(stored(second.merge(first)))).toEqual(ok);
    expect(resultRecordOf(undefined)).toBeUndefined();
  });

  it('refuses a result record of the wrong shape, or not stored as a Priority, with LATTICE_DECODE', () => {
    const ok = { ok: true, value: new Uint8Array([1]) };
    expect(codeOf(() => resultRecordOf(stored(Lww.write(clock, ok))))).toBe('LATTICE_DECODE');
    expect(codeOf(() => resultRecordOf(stored(new Max(3))))).toBe('LATTICE_DECODE');
    const wrong: unknown[] = ['ok', [ok], { value: new Uint8Array([1]) }, { ok: 'yes', value: new Uint8Array([1]) }, { ok: true, value: 'bytes' }, { ok: true }, { ok: false, code: 5, message: 'x' }, { ok: false, message: 'no code' }];
    for (const value of wrong) expect(codeOf(() => resultRecordOf(stored(new Priority(1, value)))), String(JSON.stringify(value))).toBe('LATTICE_DECODE');
    // A failure without a message is still a failure (its message empty).
    expect(resultRecordOf(stored(new Priority(1, { ok: false, code: 'EXEC_TIMEOUT' })))).toEqual({ ok: false, code: 'EXEC_TIMEOUT', message: '' });
  });
});
