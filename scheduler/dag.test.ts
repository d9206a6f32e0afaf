/**
 * DAG validation and shape (`dagShape`): a topological order with sources first, each
 * function's parents in edge order, and every malformed DAG refused with EXEC_BAD_VALUE naming
 * what is wrong (a cycle, two sinks, an edge to a function the DAG does not list, bad or repeated
 * names). A property: any random DAG built from a topological order with one sink is accepted,
 * and its order respects every edge.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DagRecord } from '../protocol/index.js';
import { DAG_FUNCTIONS_MAX, dagShape } from './dag.js';

const refusal = (record: DagRecord): { code?: string; message?: string } => {
  try {
    dagShape(record);
  } catch (error) {
    return error as { code?: string; message?: string };
  }
  throw new Error(`expected ${record.name} to be refused`);
};

const respectsEdges = (order: readonly string[], edges: DagRecord['edges']): boolean => edges.every(([from, to]) => order.indexOf(from) < order.indexOf(to));

describe('dagShape', () => {
  it('orders a diamond sources first, keeps parents in edge order, names the sink', () => {
    const edges = [
      ['a', 'b'],
      ['a', 'c'],
      ['c', 'd'],
      ['b', 'd'],
    ] as const;
    // Listed out of order: the order comes from the edges, not the list.
    const shape = dagShape({ name: 'diamond', functions: ['d', 'c', 'b', 'a'], edges });
    expect(shape.order[0]).toBe('a');
    expect(shape.order[3]).toBe('d');
    expect(respectsEdges(shape.order, edges)).toBe(true);
    expect(shape.sink).toBe('d');
    expect(shape.parents.get('d')).toEqual(['c', 'b']);
    expect(shape.parents.get('a')).toEqual([]);
    expect(shape.successors.get('a')).toEqual(['b', 'c']);
    expect(shape.successors.get('d')).toEqual([]);
  });

  it('accepts one function alone (it is its own source and sink)', () => {
    const shape = dagShape({ name: 'alone', functions: ['only'], edges: [] });
    expect(shape).toMatchObject({ order: ['only'], sink: 'only' });
  });

  it('ignores a repeated edge: one parent, one successor', () => {
    const shape = dagShape({ name: 'repeated', functions: ['a', 'b'], edges: [['a', 'b'], ['a', 'b'], ['a', 'b']] });
    expect(shape.parents.get('b')).toEqual(['a']);
    expect(shape.successors.get('a')).toEqual(['b']);
  });

  it('refuses a cycle, naming the functions on it', () => {
    const error = refusal({ name: 'loop', functions: ['a', 'b', 'c', 'd'], edges: [['a', 'b'], ['b', 'c'], ['c', 'b'], ['c', 'd']] });
    expect(error.code).toBe('EXEC_BAD_VALUE');
    expect(error.message).toContain('cycle through b, c');
    // A cycle with no source at all.
    expect(refusal({ name: 'ring', functions: ['a', 'b'], edges: [['a', 'b'], ['b', 'a']] }).message).toContain('cycle');
    // An edge from a function to itself.
    expect(refusal({ name: 'self', functions: ['a'], edges: [['a', 'a']] }).message).toContain('loop');
  });

  it('refuses two sinks (two functions would answer), and DAGs in pieces', () => {
    const fork = refusal({ name: 'fork', functions: ['a', 'b', 'c'], edges: [['a', 'b'], ['a', 'c']] });
    expect(fork.code).toBe('EXEC_BAD_VALUE');
    expect(fork.message).toContain('exactly one sink');
    expect(fork.message).toContain('b, c');
    // Two functions and no edge: both are sinks.
    expect(refusal({ name: 'apart', functions: ['a', 'b'], edges: [] }).message).toContain('exactly one sink');
  });

  it('refuses an edge naming a function the DAG does not list', () => {
    for (const edge of [['a', 'x'], ['x', 'b']] as const) {
      const error = refusal({ name: 'unknown', functions: ['a', 'b'], edges: [['a', 'b'], edge] });
      expect(error.code).toBe('EXEC_BAD_VALUE');
      expect(error.message).toContain(`${edge[0]} -> ${edge[1]}`);
    }
  });

  it('refuses bad names, a function listed twice, no functions and too many', () => {
    for (const name of ['', '9lives', 'has space', 'two/slash/name', 'Upper/name', 'x'.repeat(129)]) {
      expect(refusal({ name, functions: ['a'], edges: [] }).code, `DAG name ${name}`).toBe('EXEC_BAD_VALUE');
      expect(refusal({ name: 'dag', functions: [name], edges: [] }).code, `function name ${name}`).toBe('EXEC_BAD_VALUE');
    }
    // Names as the registry allows them are fine.
    expect(dagShape({ name: 'A_dag-1.0', functions: ['_f-1.x'], edges: [] }).sink).toBe('_f-1.x');
    expect(refusal({ name: 'twice', functions: ['a', 'a'], edges: [] }).message).toContain('lists a twice');
    expect(refusal({ name: 'empty', functions: [], edges: [] }).message).toContain('no functions');
    const many = Array.from({ length: DAG_FUNCTIONS_MAX + 1 }, (_, i) => `f${i}`);
    const chain = many.slice(1).map((name, i) => [many[i]!, name] as const);
    expect(refusal({ name: 'many', functions: many, edges: chain }).message).toContain(`at most ${DAG_FUNCTIONS_MAX}`);
    // At the limit, a chain is fine.
    expect(dagShape({ name: 'limit', functions: many.slice(0, -1), edges: chain.slice(0, -1) }).sink).toBe(`f${DAG_FUNCTIONS_MAX - 1}`);
  });

  /**
   * A random DAG with one sink, from a topological order f0..f(n-1): each function but the last
   * has at least one successor later in the order (so f(n-1) is the only sink), plus random extra
   * forward edges; functions and edges are listed shuffled, some edges twice.
   */
  const randomDag = fc
    .integer({ min: 1, max: 24 })
    .chain((n) =>
      fc.record({
        n: fc.constant(n),
        firstSuccessor: fc.tuple(...Array.from({ length: Math.max(0, n - 1) }, (_, i) => fc.integer({ min: i + 1, max: n - 1 }))),
        extra: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 3 * n }),
        repeats: fc.nat(3),
        seed: fc.integer(),
      }),
    )
    .map(({ n, firstSuccessor, extra, repeats, seed }) => {
      const name = (i: number): string => `f${i}`;
      const edges: (readonly [string, string])[] = firstSuccessor.map((to, from) => [name(from), name(to)] as const);
      for (const [x, y] of extra) if (x !== y) edges.push([name(Math.min(x, y)), name(Math.max(x, y))]);
      edges.push(...edges.slice(0, repeats));
      return { record: { name: 'random', functions: shuffled(Array.from({ length: n }, (_, i) => name(i)), seed), edges: shuffled(edges, seed + 1) }, sink: name(n - 1) };
    });

  it('accepts any DAG built from a topological order with one sink; its order respects every edge', () => {
    fc.assert(
      fc.property(randomDag, ({ record, sink }) => {
        const shape = dagShape(record);
        expect(shape.sink).toBe(sink);
        expect([...shape.order].sort()).toEqual([...record.functions].sort());
        expect(respectsEdges(shape.order, record.edges)).toBe(true);
        // Parents and successors are the edges, each once.
        const distinct = new Set(record.edges.map(([from, to]) => `${from}>${to}`));
        let counted = 0;
        for (const name of record.functions) {
          for (const parent of shape.parents.get(name)!) expect(distinct.has(`${parent}>${name}`)).toBe(true);
          expect(new Set(shape.parents.get(name)).size).toBe(shape.parents.get(name)!.length);
          expect(shape.successors.get(name)!.every((next) => shape.parents.get(next)!.includes(name))).toBe(true);
          counted += shape.parents.get(name)!.length;
        }
        expect(counted).toBe(distinct.size);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses any such DAG with one edge added from its sink back to another function (a cycle)', () => {
    fc.assert(
      fc.property(randomDag, fc.nat(), ({ record, sink }, pick) => {
        fc.pre(record.functions.length > 1);
        const others = record.functions.filter((name) => name !== sink);
        const back = [sink, others[pick % others.length]!] as const;
        const error = refusal({ ...record, edges: [...record.edges, back] });
        expect(error.code).toBe('EXEC_BAD_VALUE');
        expect(error.message).toContain('cycle');
      }),
      { numRuns: 200 },
    );
  });
});

/** A deterministic shuffle (Fisher-Yates over a small LCG), so a failing case replays from fast-check's seed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
