/**
 * The typed DAG builder's types, proved by the compiler: a DAG's input type (per function, the
 * arguments its parents do not supply) and output type (what its sink resolves to) follow from
 * the functions' own types, and a parent whose result does not fit its successor's parameter is a
 * compile error.
 *
 * This file is checked by `tsc` (the build `npm test` runs first: a `// @ts-expect-error` whose
 * error does not occur fails it) and never run: vitest's include is `**\/*.test.ts`, and every
 * case below is a function nobody calls, so loading the file would do nothing either.
 */
import { expectTypeOf } from 'vitest';
import type { FunctionContext } from '../protocol/index.js';
import { dag } from './dag-builder.js';
import type { DagDefinition, DagHandle, FunctionHandle, UserArgs, UserResult } from './dag-builder.js';
import type { LatticeFaas } from './faas.js';

declare const faas: LatticeFaas;

declare const increment: FunctionHandle<(x: number) => number, 'increment'>;
declare const square: FunctionHandle<(y: number) => number, 'square'>;
declare const shout: FunctionHandle<(text: string) => string, 'shout'>;
declare const add: FunctionHandle<(a: number, b: number) => number, 'add'>;
declare const double: FunctionHandle<(x: number) => number, 'double'>;
declare const scale: FunctionHandle<(x: number, factor: number) => number, 'scale'>;
declare const visit: FunctionHandle<(page: string, ctx: FunctionContext) => Promise<number>, 'visit'>;
declare const bump: FunctionHandle<(seen: number, ctx: FunctionContext) => { seen: number; bumped: boolean }, 'bump'>;
declare const fetchLength: FunctionHandle<(url: string) => Promise<number>, 'fetch_length'>;
declare const label: FunctionHandle<() => string, 'label'>;
declare const sumAll: FunctionHandle<(...xs: number[]) => number, 'sum_all'>;
declare const anything: FunctionHandle<(value: unknown) => string, 'anything'>;

/** The phantom input and output types a DAG definition or handle carries. */
type InOf<D> = D extends DagDefinition<infer In, unknown> ? In : D extends DagHandle<infer In, unknown> ? In : never;
type OutOf<D> = D extends DagDefinition<unknown, infer Out> ? Out : D extends DagHandle<unknown, infer Out> ? Out : never;

export function squareOfIncrement(): void {
  const composed = dag('square-of-increment').fn(increment).fn(square, ['increment']).build();
  expectTypeOf(composed).toEqualTypeOf<DagDefinition<{ increment: [x: number] }, number>>();
  // The same through the phantom fields.
  expectTypeOf(composed.__in).toEqualTypeOf<{ increment: [x: number] } | undefined>();
  expectTypeOf(composed.__out).toEqualTypeOf<number | undefined>();
  expectTypeOf<InOf<typeof composed>>().toEqualTypeOf<{ increment: [x: number] }>();
  expectTypeOf<OutOf<typeof composed>>().toEqualTypeOf<number>();
}

export function parentResultMustFitTheParameter(): void {
  // shout takes a string; increment returns a number.
  // @ts-expect-error the parent's number does not fit the string parameter
  dag('bad').fn(increment).fn(shout, ['increment']);
  // A string fits: fine.
  dag('good').fn(shout).fn(fetchLength, ['shout']);
  // @ts-expect-error a parent that is not in the DAG (yet)
  dag('unknown-parent').fn(square, ['increment']);
  // @ts-expect-error one parent too many: square takes one argument
  dag('too-many').fn(increment).fn(double).fn(square, ['increment', 'double']);
  // @ts-expect-error the DAG already has increment
  dag('twice').fn(increment).fn(increment);
  // @ts-expect-error a name typed plain string: the DAG's types could not tell functions apart
  dag('wide').fn(faas.function<(x: number) => number>('increment'));
  dag('literal').fn(faas.function<(x: number) => number, 'increment'>('increment'));
}

export function twoParentsFeedTwoParameters(): void {
  const summed = dag('sum').fn(increment).fn(double).fn(add, ['increment', 'double']).build();
  expectTypeOf<InOf<typeof summed>>().toEqualTypeOf<{ increment: [x: number]; double: [x: number] }>();
  expectTypeOf<OutOf<typeof summed>>().toEqualTypeOf<number>();
  // One parent of two: the second parameter is the caller's.
  const scaled = dag('scaled').fn(increment).fn(scale, ['increment']).build();
  expectTypeOf<InOf<typeof scaled>>().toEqualTypeOf<{ increment: [x: number]; scale: [factor: number] }>();
  // @ts-expect-error the second parent's string does not fit add's second number
  dag('mixed').fn(increment).fn(shout).fn(add, ['increment', 'shout']);
}

export function contextIsNotAnInput(): void {
  expectTypeOf<UserArgs<(page: string, ctx: FunctionContext) => number>>().toEqualTypeOf<[page: string]>();
  expectTypeOf<UserArgs<(ctx: FunctionContext) => number>>().toEqualTypeOf<[]>();
  expectTypeOf<UserArgs<(x: number) => number>>().toEqualTypeOf<[x: number]>();
  // A part of the ctx is the ctx too.
  expectTypeOf<UserArgs<(x: number, ctx: Pick<FunctionContext, 'get' | 'put'>) => number>>().toEqualTypeOf<[x: number]>();
  // A loosely typed last parameter (unknown, any) is taken for the ctx when a ctx is not declared...
  expectTypeOf<UserArgs<(ctx: unknown) => number>>().toEqualTypeOf<[]>();
  expectTypeOf<UserArgs<(value: unknown, ctx: FunctionContext) => number>>().toEqualTypeOf<[value: unknown]>();
  // ...but a parameter any object fits is a value.
  expectTypeOf<UserArgs<(options: object) => number>>().toEqualTypeOf<[options: object]>();
  expectTypeOf<UserArgs<(options: { verbose?: boolean }) => number>>().toEqualTypeOf<[options: { verbose?: boolean }]>();
  const visits = dag('visits').fn(visit).build();
  expectTypeOf<InOf<typeof visits>>().toEqualTypeOf<{ visit: [page: string] }>();
  // Fed by its parent, bump needs no argument of the caller's: it may be left out.
  const bumped = dag('bumped').fn(visit).fn(bump, ['visit']).build();
  expectTypeOf<OutOf<typeof bumped>>().toEqualTypeOf<{ seen: number; bumped: boolean }>();
  expectTypeOf<InOf<typeof bumped>>().toEqualTypeOf<{ visit: [page: string] }>();
  // ...and a parent may still feed it (anything takes `value: unknown`).
  const logged = dag('logged').fn(increment).fn(anything, ['increment']).build();
  expectTypeOf<InOf<typeof logged>>().toEqualTypeOf<{ increment: [x: number] }>();
  expectTypeOf<OutOf<typeof logged>>().toEqualTypeOf<string>();
  // @ts-expect-error the ctx cannot be fed by a parent
  dag('fed-ctx').fn(shout).fn(label).fn(visit, ['shout', 'label']);
}

export function restParametersAndUntypedFunctions(): void {
  // A rest parameter takes any number of parents; the caller may add more, or none.
  const summed = dag('rest').fn(increment).fn(double).fn(sumAll, ['increment', 'double']).build();
  expectTypeOf<InOf<typeof summed>>().toEqualTypeOf<{ increment: [x: number]; double: [x: number]; sum_all?: number[] }>();
  expectTypeOf<OutOf<typeof summed>>().toEqualTypeOf<number>();
  // @ts-expect-error a string into the rest numbers
  dag('rest-bad').fn(shout).fn(sumAll, ['shout']);
  // Untyped handles (`faas.function('name')`): anything fits, every input may be left out.
  const untyped = dag('untyped').fn(faas.function('a')).fn(faas.function('b'), ['a']).build();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  expectTypeOf<InOf<typeof untyped>>().toEqualTypeOf<{ a?: any[]; b?: any[] }>();
  expectTypeOf<OutOf<typeof untyped>>().toEqualTypeOf<unknown>();
}

export function asyncOutputIsAwaited(): void {
  expectTypeOf<UserResult<(url: string) => Promise<number>>>().toEqualTypeOf<number>();
  const lengths = dag('lengths').fn(shout).fn(fetchLength, ['shout']).build();
  expectTypeOf<OutOf<typeof lengths>>().toEqualTypeOf<number>();
  // An awaited parent feeds a number parameter.
  const squared = dag('squared-length').fn(fetchLength).fn(square, ['fetch_length']).build();
  expectTypeOf<OutOf<typeof squared>>().toEqualTypeOf<number>();
  expectTypeOf<InOf<typeof squared>>().toEqualTypeOf<{ fetch_length: [url: string] }>();
}

export async function callDagTakesTheInputsAndGivesTheOutput(): Promise<void> {
  const handle = await faas.registerDag(dag('square-of-increment').fn(increment).fn(square, ['increment']).build());
  expectTypeOf(handle).toEqualTypeOf<DagHandle<{ increment: [x: number] }, number>>();
  expectTypeOf(faas.callDag(handle, { increment: [3] })).toEqualTypeOf<Promise<number>>();
  expectTypeOf((await faas.callDagAsync(handle, { increment: [3] })).result()).toEqualTypeOf<Promise<number>>();
  // @ts-expect-error increment takes a number
  await faas.callDag(handle, { increment: ['3'] });
  // @ts-expect-error increment's argument is missing
  await faas.callDag(handle, {});
  // @ts-expect-error a function the DAG does not have
  await faas.callDag(handle, { increment: [3], cube: [2] });
  // @ts-expect-error too many arguments for increment
  await faas.callDag(handle, { increment: [3, 4] });
  // A DAG called by name is untyped: anything goes, the result is unknown.
  expectTypeOf(faas.callDag('square-of-increment', { increment: [3] })).toEqualTypeOf<Promise<unknown>>();
  const sum = await faas.registerDag(dag('sum').fn(increment).fn(double).fn(add, ['increment', 'double']).build());
  expectTypeOf(faas.callDag(sum, { increment: [1], double: [2] })).toEqualTypeOf<Promise<number>>();
  // @ts-expect-error double's argument is missing
  await faas.callDag(sum, { increment: [1] });
}
