/**
 * The types of `faas.fn<F>(name)`, proved by the compiler: a typed callable whose arguments and
 * result follow from the function module's own type (its trailing `ctx` left out, `ref(key)`
 * allowed for any argument), with `.async` (a typed future), `.with` and `.handle`.
 *
 * Checked by `tsc` (the build), never run (see dag-builder.test-d.ts).
 */
import { expectTypeOf } from 'vitest';
import type { FunctionContext } from '../protocol/index.js';
import { dag } from './dag-builder.js';
import type { FunctionHandle } from './dag-builder.js';
import type { CallFuture, LatticeFaas, TypedFunction } from './faas.js';
import { ref } from './faas.js';

declare const faas: LatticeFaas;

/** As a function module would default-export them. */
declare function square(x: number): number;
declare function visit(page: string, ctx: FunctionContext): Promise<{ views: number }>;
declare function join(separator: string, ...parts: string[]): string;
declare function label(): string;

export function callableFromTheModuleType(): void {
  const typed = faas.fn<typeof square>('square');
  expectTypeOf(typed).toEqualTypeOf<TypedFunction<typeof square, string>>();
  expectTypeOf(typed(7)).toEqualTypeOf<Promise<number>>();
  expectTypeOf(typed.async(7)).toEqualTypeOf<Promise<CallFuture<number>>>();
  expectTypeOf(typed.handle).toEqualTypeOf<FunctionHandle<typeof square, string>>();
  expectTypeOf(typed.with({ timeoutMs: 500 })).toEqualTypeOf<TypedFunction<typeof square, string>>();
  // A KVS reference stands for any argument.
  expectTypeOf(typed(ref('alice/x'))).toEqualTypeOf<Promise<number>>();
  // @ts-expect-error a string is not a number
  void typed('7');
  // @ts-expect-error one argument, not two
  void typed(1, 2);
  // @ts-expect-error one argument, not none
  void typed();
}

export function ctxIsLeftOutAndPromisesUnwrapped(): void {
  const typed = faas.fn<typeof visit>('visit');
  expectTypeOf(typed('home')).toEqualTypeOf<Promise<{ views: number }>>();
  expectTypeOf<Parameters<typeof typed>>().toEqualTypeOf<[page: string | ReturnType<typeof ref>]>();
  // @ts-expect-error the ctx is the platform's, never the caller's
  void typed('home', {} as FunctionContext);
}

export function restAndNoParameters(): void {
  const joined = faas.fn<typeof join>('join');
  expectTypeOf(joined(', ', 'a', 'b')).toEqualTypeOf<Promise<string>>();
  expectTypeOf(joined(', ')).toEqualTypeOf<Promise<string>>();
  const labelled = faas.fn<typeof label>('label');
  expectTypeOf(labelled()).toEqualTypeOf<Promise<string>>();
  // @ts-expect-error it takes nothing
  void labelled(1);
}

export function handleFeedsADag(): void {
  const first = faas.fn<typeof square, 'square'>('square');
  const composed = dag('square-twice').fn(first.handle).build();
  expectTypeOf(composed.__out).toEqualTypeOf<number | undefined>();
}
