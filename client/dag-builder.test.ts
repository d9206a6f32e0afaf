/**
 * The DAG builder at run time: the functions and edges it records (parents in the order given),
 * and what it refuses (a function added twice, a parent listed twice or not added yet, a DAG
 * whose last function added is not its one sink). Its types are proved in dag-builder.test-d.ts.
 */
import { describe, expect, it } from 'vitest';
import { dag } from './dag-builder.js';
import type { AnyFunction, FunctionHandle } from './dag-builder.js';

/** A handle as `faas.function` makes it; the builder only reads the name. */
const handle = <Name extends string>(name: Name): FunctionHandle<AnyFunction, Name> => ({ name, version: 0 });
const [a, b, c, d] = [handle('a'), handle('b'), handle('c'), handle('d')];

const refusal = (build: () => unknown): { code?: string; message?: string } => {
  try {
    build();
  } catch (error) {
    return error as { code?: string; message?: string };
  }
  throw new Error('expected the builder to refuse');
};

describe('dag builder', () => {
  it('records the functions in the order added and one edge per parent, in the order given', () => {
    expect(dag('single').fn(a).build()).toEqual({ name: 'single', functions: ['a'], edges: [] });
    expect(dag('line').fn(a).fn(b, ['a']).fn(c, ['b']).build()).toEqual({ name: 'line', functions: ['a', 'b', 'c'], edges: [['a', 'b'], ['b', 'c']] });
    const diamond = dag('diamond').fn(a).fn(b, ['a']).fn(c, ['a']).fn(d, ['c', 'b']).build();
    expect(diamond.functions).toEqual(['a', 'b', 'c', 'd']);
    // d's parents as listed: c first, so c's result is d's first argument.
    expect(diamond.edges).toEqual([['a', 'b'], ['a', 'c'], ['c', 'd'], ['b', 'd']]);
    // Two sources into one sink.
    expect(dag('join').fn(a).fn(b).fn(c, ['a', 'b']).build().edges).toEqual([['a', 'c'], ['b', 'c']]);
  });

  it('gives each build its own copy: building again, or adding after a build, does not change a definition already made', () => {
    const builder = dag('copies').fn(a).fn(b, ['a']);
    const first = builder.build();
    const second = builder.build();
    expect(second).toEqual(first);
    expect(second.edges).not.toBe(first.edges);
    (second.functions as string[]).push('mutated');
    expect(first.functions).toEqual(['a', 'b']);
  });

  it('refuses a function added twice', () => {
    const error = refusal(() => (dag('twice').fn(a) as unknown as { fn(h: FunctionHandle): unknown }).fn(a));
    expect(error.code).toBe('EXEC_BAD_VALUE');
    expect(error.message).toContain('already has a');
  });

  it('refuses a parent not added yet, and a parent listed twice', () => {
    const notYet = refusal(() => dag('early').fn(a).fn(c, ['b' as 'a']));
    expect(notYet.code).toBe('EXEC_BAD_VALUE');
    expect(notYet.message).toContain('parent b is not in DAG early');
    // Naming itself as a parent is a parent not added yet too.
    expect(refusal(() => dag('self').fn(a).fn(b, ['b' as 'a'])).code).toBe('EXEC_BAD_VALUE');
    const twice = refusal(() => dag('twice-parent').fn(a).fn(b, ['a', 'a']));
    expect(twice.code).toBe('EXEC_BAD_VALUE');
    expect(twice.message).toContain('lists a parent twice');
  });

  it('refuses a DAG whose sink is not the last function added, or that has two sinks, or none', () => {
    // b is the only sink but a was added last (a source added after the fact).
    const notLast = refusal(() => dag('late-source').fn(b).fn(a).fn(c, ['b']).build());
    expect(notLast.code).toBe('EXEC_BAD_VALUE');
    expect(notLast.message).toContain('sinks are a, c');
    // Two sinks: b and c both take from a, nothing takes from either.
    const twoSinks = refusal(() => dag('fork').fn(a).fn(b, ['a']).fn(c, ['a']).build());
    expect(twoSinks.message).toContain('sinks are b, c');
    const empty = refusal(() => dag('empty').build());
    expect(empty.code).toBe('EXEC_BAD_VALUE');
    expect(empty.message).toContain('none');
  });
});
