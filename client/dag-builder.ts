/**
 * The typed DAG builder. Each function added names its parents; their results become its first
 * arguments, in the order given, and the compiler checks that they fit: a parent returning a
 * string cannot feed a parameter of type number. The DAG's input type (per function, the
 * arguments its parents do not supply) and output type (what the last function added, the sink,
 * returns) follow from the functions' own types.
 *
 * @example
 * ```ts
 * const increment = faas.function<typeof import('./increment.js').default>('increment');
 * const square = faas.function<typeof import('./square.js').default>('square');
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

/** A function's parameters without its trailing `ctx`. */
export type UserArgs<F extends AnyFunction> = Parameters<F> extends [...infer Head, infer Last] ? (FunctionContext extends Last ? Head : Parameters<F>) : Parameters<F>;

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

type Take<A extends readonly unknown[], N extends number, Acc extends unknown[] = []> = Acc['length'] extends N ? Acc : A extends readonly [infer H, ...infer R] ? Take<R, N, [...Acc, H]> : Acc;
type Drop<A extends readonly unknown[], N extends number, Acc extends unknown[] = []> = Acc['length'] extends N ? A : A extends readonly [infer H, ...infer R] ? Drop<R, N, [...Acc, H]> : [];
type Outputs<Nodes extends Record<string, AnyFunction>, P extends readonly string[]> = { -readonly [I in keyof P]: P[I] extends keyof Nodes ? UserResult<Nodes[P[I]]> : never };

/** The parents' results fit the function's first parameters. */
type ParentsFit<Nodes extends Record<string, AnyFunction>, P extends readonly string[], F extends AnyFunction> =
  Outputs<Nodes, P> extends Take<UserArgs<F>, P['length']> ? (Take<UserArgs<F>, P['length']>['length'] extends P['length'] ? P : never) : never;

/** Per function, the arguments the caller gives; functions that take none may be left out. */
export type DagInput<Inputs extends Record<string, readonly unknown[]>> = { [K in keyof Inputs as Inputs[K] extends readonly [] ? never : K]: Inputs[K] } & {
  [K in keyof Inputs as Inputs[K] extends readonly [] ? K : never]?: Inputs[K];
};

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
    handle: FunctionHandle<F, Name>,
    parents?: ParentsFit<Nodes, P, F>,
  ): DagBuilder<Nodes & { [K in Name]: F }, Inputs & { [K in Name]: Drop<UserArgs<F>, P['length']> }, UserResult<F>> {
    if (this.names.includes(handle.name)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `DAG ${this.name} already has ${handle.name}`);
    for (const parent of (parents ?? []) as readonly string[]) {
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
