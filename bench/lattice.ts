/**
 * `lattice`: merge and encode+decode operations per second for each lattice type, at
 * representative sizes. No peer system exists for this one; the targets are the issue's.
 */
import { Counter, GSet, HybridClock, Lww, MapLattice, Max, MultiKeyCausal, OrderedSet, Priority, SingleKeyCausal, VectorClock, Bool, Min, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { opsPerSecond } from './harness/load.js';
import { publish } from './harness/report.js';
import type { Row } from './harness/report.js';

function cases(): [string, AnyLattice, AnyLattice][] {
  let t = 1_700_000_000_000;
  const clockA = new HybridClock('writer-a', () => t++);
  const clockB = new HybridClock('writer-b', () => t++);
  const writers = Array.from({ length: 8 }, (_, i) => `w${i}`);
  const counter = (offset: number): Counter => writers.reduce((c, w, i) => c.increment(w, i + offset), Counter.ZERO);
  const vc = (offset: number): VectorClock => VectorClock.of(Object.fromEntries(writers.map((w, i) => [w, (i + offset) % 5])));
  return [
    ['Lww (small string)', Lww.write(clockA, 'hello world'), Lww.write(clockB, 'goodbye world')],
    ['Max', new Max(3), new Max(5)],
    ['Min', new Min(3), new Min(5)],
    ['Bool', Bool.of(false), Bool.of(true)],
    ['Priority', new Priority(2, 'a'), new Priority(1, 'b')],
    ['GSet (16 elements)', GSet.of(...Array.from({ length: 16 }, (_, i) => i)), GSet.of(...Array.from({ length: 16 }, (_, i) => i + 8))],
    ['OrderedSet (16 elements)', OrderedSet.of(...Array.from({ length: 16 }, (_, i) => `e${i}`)), OrderedSet.of(...Array.from({ length: 16 }, (_, i) => `e${i + 8}`))],
    ['Counter (8 writers)', counter(1), counter(2).decrement('w0', 3)],
    ['VectorClock (8 nodes)', vc(1), vc(3)],
    ['Map of 16 Counters', MapLattice.of(Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, counter(i)]))), MapLattice.of(Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, counter(16 - i)])))],
    ['SingleKeyCausal (2 concurrent)', SingleKeyCausal.write(VectorClock.of({ a: 2, b: 1 }), 'x'), SingleKeyCausal.write(VectorClock.of({ a: 1, b: 2 }), 'y')],
    ['MultiKeyCausal (2 deps)', MultiKeyCausal.write(VectorClock.of({ a: 2 }), 'x', { k1: VectorClock.of({ a: 1 }) }), MultiKeyCausal.write(VectorClock.of({ b: 2 }), 'y', { k2: VectorClock.of({ b: 1 }) })],
  ];
}

export const latticeBenchmark: Benchmark = async (options) => {
  const durationMs = options.quick ? 300 : 1500;
  const rows: Row[] = [];
  for (const [name, a, b] of cases()) {
    // Alternate the operands so neither the JIT nor the branch predictor sees one constant case.
    const pairs: [AnyLattice, AnyLattice][] = [[a, b], [b, a], [a, a], [b, b]];
    let i = 0;
    const merge = opsPerSecond(() => {
      const [x, y] = pairs[i++ & 3]!;
      return x.merge(y);
    }, durationMs);
    const codec = opsPerSecond(() => decodeLattice(a.encode()), durationMs);
    rows.push({ type: name, bytes: a.encode().byteLength, mergePerSecond: merge, encodeDecodePerSecond: codec });
    if (!options.json) process.stderr.write('.');
  }
  if (!options.json) process.stderr.write('\n');
  const lww = rows[0]!;
  const lwwMerge = lww['mergePerSecond'] as number;
  const lwwCodec = lww['encodeDecodePerSecond'] as number;
  await publish('lattice', options, {
    rows,
    ratios: { lwwMerge_over_target_5M: lwwMerge / 5e6, lwwCodec_over_target_1M: lwwCodec / 1e6 },
    targets: [
      { name: 'LWW merge ops/s', target: '>= 5,000,000', value: lwwMerge, met: lwwMerge >= 5e6 },
      { name: 'LWW encode+decode ops/s', target: '>= 1,000,000', value: lwwCodec, met: lwwCodec >= 1e6 },
    ],
    notes: ['single thread, values immutable; no peer system: targets from the issue'],
    plot: {
      rows: rows.flatMap((row) => [
        { type: row['type']!, operation: 'merge', perSecond: row['mergePerSecond']! },
        { type: row['type']!, operation: 'encode+decode', perSecond: row['encodeDecodePerSecond']! },
      ]),
      spec: {
        title: 'lattice: operations per second (log scale)',
        width: 460,
        height: 320,
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          y: { field: 'type', type: 'nominal', title: null, axis: { labelLimit: 260 } },
          x: { field: 'perSecond', type: 'quantitative', scale: { type: 'log' }, title: 'operations / s' },
          color: { field: 'operation', type: 'nominal' },
        },
      },
    },
  });
};
