/**
 * DAG specs: validation at registration (names, edges between listed functions, no cycle,
 * exactly one sink, so exactly one function answers) and the shape a schedule needs (each
 * function's successors and parent count, in a topological order: sources first).
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { NAME_PATTERN } from '../protocol/index.js';
import type { DagRecord } from '../protocol/index.js';

export interface DagShape {
  /** Function names, sources first (a topological order). */
  readonly order: readonly string[];
  readonly successors: ReadonlyMap<string, readonly string[]>;
  readonly parents: ReadonlyMap<string, readonly string[]>;
  readonly sink: string;
}

export const DAG_FUNCTIONS_MAX = 64;

function invalid(message: string): LfaasError {
  return new LfaasError(ErrorCode.EXEC_BAD_VALUE, message);
}

/** Checks a DAG and derives its shape; throws EXEC_BAD_VALUE naming what is wrong. */
export function dagShape(dag: DagRecord): DagShape {
  if (!NAME_PATTERN.test(dag.name)) throw invalid(`DAG name ${JSON.stringify(dag.name)} must match ${NAME_PATTERN}`);
  if (dag.functions.length === 0) throw invalid(`DAG ${dag.name} has no functions`);
  if (dag.functions.length > DAG_FUNCTIONS_MAX) throw invalid(`DAG ${dag.name} has ${dag.functions.length} functions; at most ${DAG_FUNCTIONS_MAX}`);
  const names = new Set<string>();
  for (const name of dag.functions) {
    if (!NAME_PATTERN.test(name)) throw invalid(`function name ${JSON.stringify(name)} must match ${NAME_PATTERN}`);
    if (names.has(name)) throw invalid(`DAG ${dag.name} lists ${name} twice`);
    names.add(name);
  }
  const successors = new Map<string, string[]>(dag.functions.map((name) => [name, []]));
  const parents = new Map<string, string[]>(dag.functions.map((name) => [name, []]));
  const seen = new Set<string>();
  for (const [from, to] of dag.edges) {
    if (!names.has(from) || !names.has(to)) throw invalid(`edge ${from} -> ${to} names a function the DAG does not list`);
    if (from === to) throw invalid(`edge ${from} -> ${to} is a loop`);
    if (seen.has(`${from}\u0000${to}`)) continue;
    seen.add(`${from}\u0000${to}`);
    successors.get(from)!.push(to);
    parents.get(to)!.push(from);
  }
  // Kahn's algorithm: what is never freed lies on a cycle.
  const order: string[] = [];
  const waiting = new Map(dag.functions.map((name) => [name, parents.get(name)!.length]));
  const ready = dag.functions.filter((name) => waiting.get(name) === 0);
  while (ready.length > 0) {
    const name = ready.shift()!;
    order.push(name);
    for (const next of successors.get(name)!) {
      const left = waiting.get(next)! - 1;
      waiting.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  if (order.length !== dag.functions.length) throw invalid(`DAG ${dag.name} has a cycle through ${dag.functions.filter((name) => !order.includes(name)).join(', ')}`);
  const sinks = dag.functions.filter((name) => successors.get(name)!.length === 0);
  if (sinks.length !== 1) throw invalid(`DAG ${dag.name} must have exactly one sink (a function without successors); it has ${sinks.join(', ')}`);
  // Connected: every function reaches the sink (with one sink and no cycle, each does).
  return { order, successors, parents, sink: sinks[0]! };
}
