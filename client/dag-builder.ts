/**
 * The typed DAG builder. Each function added names its parents; their results become its first
 * arguments, in the order given, and the compiler checks that they fit: a parent returning a
 * string cannot feed a parameter of type number. The DAG's input type (per function, the
 * arguments its parents do not supply) and output type (what the last function added, the sink,
 * returns) follow from the functions' own types.
 *
 * @example
 * ```ts
 * const increment = faas.function<typeof import('./increment.js').default, 'increment'>('increment');
 * const square = faas.function<typeof import('./square.js').default, 'square'>('square');
 * const composed = dag('square-of-increment').fn(increment).fn(square, ['increment']).build();
 * //    ^? DagDefinition<{ increment: [x: number] }, number>
 * const handle = await faas.registerDag(composed);
 * const result = await faas.callDag(handle, { increment: [3] }); // 16, a number
 * ```
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { FunctionContext } from '../protocol/index.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFunction = (...args: any[]) => unknown;

/**
 * Whether a last parameter is the `ctx`: typed as a {@link FunctionContext} (or a part of it), or
 * loosely as `unknown`/`any` (JavaScript-minded signatures type it so). A parameter any object
 * fits (`object`, `{}`, a bag of optional options) is a value, not the ctx.
 */
type IsContext<T> = unknown extends T ? true : {} extends T ? false : FunctionContext extends T ? true : false;

/** A function's parameters without its trailing `ctx`. */
export type UserArgs<F extends AnyFunction> = Parameters<F> extends [...infer Head, infer Last] ? (IsContext<Last> extends true ? Head : Parameters<F>) : Parameters<F>;

/** What a call of the function resolves to. */
export type UserResult<F extends AnyFunction> = Awaited<ReturnType<F>>;

/** A registered function, typed by the function itself. */
export interface FunctionHandle<F extends AnyFunction = AnyFunction, Name extends string = string> {
  readonly name: Name;
  /** 0: the latest version at each call. */
  readonly version: number;
  /** Carries the type only. */
  readonly __fn?: F;
}

/** Whether a parameter list ends in a rest parameter (`...xs: T[]`, and an untyped function's `any[]`). */
type Open<A extends readonly unknown[]> = number extends A['length'] ? true : false;
/** The first N parameters (a rest parameter gives as many as asked). */
type Take<A extends readonly unknown[], N extends number, Acc extends unknown[] = []> = Acc['length'] extends N
  ? Acc
  : A extends readonly [infer H, ...infer R]
    ? Take<R, N, [...Acc, H]>
    : A extends readonly (infer E)[]
      ? Open<A> extends true
        ? Take<A, N, [...Acc, E]>
        : Acc
      : Acc;
/** The parameters after the first N (a rest parameter stays). */
type Drop<A extends readonly unknown[], N extends number, Acc extends unknown[] = []> = Acc['length'] extends N ? A : A extends readonly [infer H, ...infer R] ? Drop<R, N, [...Acc, H]> : Open<A> extends true ? A : [];
type Outputs<Nodes extends Record<string, AnyFunction>, P extends readonly string[]> = { -readonly [I in keyof P]: P[I] extends keyof Nodes ? UserResult<Nodes[P[I]]> : never };

/**
 * The parents' results fit the function's first parameters (all of them: a last parameter taken
 * for a loosely typed ctx may still be fed by a parent, as in `(value: unknown) => ...`).
 */
type ParentsFit<Nodes extends Record<string, AnyFunction>, P extends readonly string[], F extends AnyFunction> =
  Take<Parameters<F>, P['length']> extends infer Fed extends readonly unknown[] ? (Fed['length'] extends P['length'] ? (Outputs<Nodes, P> extends Fed ? P : never) : never) : never;

/**
 * Refuses, at compile time, a handle whose name type is plain `string` (as from
 * `faas.function<F>('name')`: a name given with F must be given as a type too,
 * `faas.function<F, 'name'>('name')`; the DAG's types could not tell its functions apart), and
 * a function the DAG already has.
 */
type NewName<Nodes extends Record<string, AnyFunction>, Name extends string> = string extends Name
  ? { readonly 'the handle needs a literal name type: faas.function<F, "name">("name")': never }
  : Name extends keyof Nodes
    ? { readonly 'the DAG already has a function of this name': never }
    : unknown;

/**
 * Per function, the arguments the caller gives. Functions that take none of the caller's (their
 * parents give all their arguments) are left out, so `square(increment(x))` takes
 * `{ increment: [x] }` only; functions with a rest parameter, and untyped ones, may be.
 */
export type DagInput<Inputs extends Record<string, readonly unknown[]>> = Flat<
  { [K in keyof Inputs as Inputs[K] extends readonly [] ? never : Open<Inputs[K]> extends true ? never : K]: Inputs[K] } & {
    // A rest parameter (or an untyped function) may be given no arguments: its key may be left out.
    [K in keyof Inputs as Open<Inputs[K]> extends true ? K : never]?: Inputs[K];
  }
>;
type Flat<T> = { [K in keyof T]: T[K] };

/** A DAG as the builder made it: functions, edges, and its input and output types. */
export interface DagDefinition<In = unknown, Out = unknown> {
  readonly name: string;
  readonly functions: readonly string[];
  readonly edges: readonly (readonly [string, string])[];
  readonly __in?: In;
  readonly __out?: Out;
}

/** A registered DAG. */
export interface DagHandle<In = unknown, Out = unknown> {
  readonly name: string;
  readonly __in?: In;
  readonly __out?: Out;
}

export class DagBuilder<Nodes extends Record<string, AnyFunction> = {}, Inputs extends Record<string, readonly unknown[]> = {}, Out = never> {
  private readonly names: string[] = [];
  private readonly edges: [string, string][] = [];

  constructor(private readonly name: string) {}

  /**
   * Adds `handle`'s function; the results of `parents` (functions added before) are its first
   * arguments, in that order.
   */
  fn<F extends AnyFunction, Name extends string, const P extends readonly (keyof Nodes & string)[] = []>(
    handle: FunctionHandle<F, Name> & NewName<Nodes, Name>,
    parents?: ParentsFit<Nodes, P, F>,
  ): DagBuilder<Nodes & { [K in Name]: F }, Inputs & { [K in Name]: Drop<UserArgs<F>, P['length']> }, UserResult<F>> {
    if (this.names.includes(handle.name)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `DAG ${this.name} already has ${handle.name}`);
    const listed = (parents ?? []) as readonly string[];
    // A parent listed twice would be one edge (the scheduler keeps one of duplicates), one argument.
    if (new Set(listed).size !== listed.length) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${handle.name} lists a parent twice: ${listed.join(', ')}`);
    for (const parent of listed) {
      if (!this.names.includes(parent)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${handle.name}'s parent ${parent} is not in DAG ${this.name} yet`);
      this.edges.push([parent, handle.name]);
    }
    this.names.push(handle.name);
    return this as unknown as DagBuilder<Nodes & { [K in Name]: F }, Inputs & { [K in Name]: Drop<UserArgs<F>, P['length']> }, UserResult<F>>;
  }

  /** The DAG; its sink (the one function no other takes from) must be the last one added. */
  build(): DagDefinition<DagInput<Inputs>, Out> {
    const last = this.names[this.names.length - 1];
    const sinks = this.names.filter((name) => !this.edges.some(([from]) => from === name));
    if (last === undefined || sinks.length !== 1 || sinks[0] !== last) {
      throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `DAG ${this.name} must end in one sink, added last; its sinks are ${sinks.join(', ') || 'none'}`);
    }
    return { name: this.name, functions: [...this.names], edges: this.edges.map(([from, to]) => [from, to] as const) };
  }
}

/** Starts a typed DAG. */
export function dag(name: string): DagBuilder {
  return new DagBuilder(name);
}
