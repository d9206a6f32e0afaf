/**
 * `lfaas deploy|call|dag|functions|delete-function`: functions and DAGs from the command line,
 * through the SDK (`LatticeFaas`). Every command takes `--routing` (env LFAAS_ROUTING) and
 * `--schedulers` (env LFAAS_SCHEDULERS); with neither, the cluster of the `lfaas up` state file
 * (client/cluster-file.ts). Results print as JSON on stdout (lists: a table, or with `--json` one
 * JSON array); a typed error makes the command fail with its exit code (cli/exit-codes.ts).
 *
 * Values on the command line are JSON; a bare word that is not JSON is a string
 * (`lfaas call greet world` passes `"world"`). Results that JSON cannot show as they are print as
 * strings: a bigint as its decimal digits, bytes as base64.
 */
import { basename, extname } from 'node:path';
import { ErrorCode, LatticeFaas, LfaasError } from '../client/index.js';
import type { CallOptions, Consistency, FunctionInfo } from '../client/index.js';
import { UsageError, reportFailure } from './exit-codes.js';
import { withTrace } from './tracing.js';

export const CONSISTENCIES = ['lww', 'repeatable-read', 'causal'] as const;

export interface FaasAddresses {
  /** Comma-separated routing node addresses (absent: LFAAS_ROUTING, else the state file). */
  readonly routing?: string;
  /** Comma-separated scheduler addresses (absent: LFAAS_SCHEDULERS, else the state file). */
  readonly schedulers?: string;
}

const addresses = (text: string): string[] => text.split(',').filter((address) => address.length > 0);

/** The connect options of the addresses given (none: the SDK looks in the environment, then the state file). */
export function given(options: FaasAddresses): { routing?: string[]; schedulers?: string[] } {
  return {
    ...(options.routing === undefined || options.routing === '' ? {} : { routing: addresses(options.routing) }),
    ...(options.schedulers === undefined || options.schedulers === '' ? {} : { schedulers: addresses(options.schedulers) }),
  };
}

/**
 * Connecting and closing take milliseconds (binding two sockets, closing them): one that takes
 * longer than this is a bug, reported as such rather than left to hang the command. (The
 * requests in between are bounded by the SDK's own timeouts.)
 */
const PHASE_BOUND_MS = 10_000;

/** Runs `phase`; if it has not settled within PHASE_BOUND_MS, says so on stderr and exits 1. */
async function bounded<T>(what: string, phase: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const watchdog = setTimeout(() => {
    reportFailure(new LfaasError(ErrorCode.INTERNAL, `${what} took more than ${Math.round((Date.now() - started) / 1000)} s (a bug: it takes milliseconds)`));
    process.exit(1);
  }, PHASE_BOUND_MS);
  watchdog.unref();
  try {
    return await phase();
  } finally {
    clearTimeout(watchdog);
  }
}

async function withFaas<T>(options: FaasAddresses, body: (faas: LatticeFaas) => Promise<T>): Promise<T> {
  const faas = await bounded('connecting', () => LatticeFaas.connect(given(options)));
  try {
    return await body(faas);
  } finally {
    await bounded('closing the client', () => faas.close());
    exitWatchdog();
  }
}

/**
 * Once a command is done, nothing should keep the process alive: if something does (a socket
 * left open is a bug), say so after PHASE_BOUND_MS and exit with the command's code. Unref'd, so
 * it never delays a clean exit.
 */
export function exitWatchdog(): void {
  setTimeout(() => {
    process.stderr.write(`lfaas: INTERNAL: the command finished but the process did not exit within ${PHASE_BOUND_MS / 1000} s (a handle left open)\n`);
    process.exit(process.exitCode ?? 0);
  }, PHASE_BOUND_MS).unref();
}

/** A command-line value: JSON, or the text itself as a string. */
export function parseArg(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** JSON text of a result (undefined prints as null; bigints and bytes as strings). */
export function formatResult(value: unknown): string {
  return (
    JSON.stringify(value ?? null, function (this: unknown, key: string, item: unknown) {
      // Buffer.toJSON has run already when the replacer sees a Buffer: read the original.
      const original = (this as Record<string, unknown>)[key];
      if (original instanceof Uint8Array) return Buffer.from(original).toString('base64');
      if (typeof item === 'bigint') return item.toString();
      return item;
    }) ?? 'null'
  );
}

/** The name `deploy` registers a file under: its base name without the extension. */
export function functionNameOf(file: string): string {
  return basename(file, extname(file));
}

export interface DeployOptions extends FaasAddresses {
  readonly name?: string;
  readonly memoryMb?: number;
  readonly timeoutMs?: number;
  readonly keepAliveMs?: number;
  readonly keepAlive?: 'fixed' | 'adaptive';
  readonly reads?: readonly string[];
  readonly concurrency?: number;
}

export async function faasDeploy(file: string, options: DeployOptions): Promise<void> {
  const name = options.name ?? functionNameOf(file);
  const handle = await withFaas(options, (faas) =>
    faas.register(name, file, {
      ...(options.memoryMb === undefined ? {} : { memoryMb: options.memoryMb }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }),
      ...(options.keepAlive === undefined ? {} : { keepAlive: options.keepAlive }),
      ...(options.reads === undefined ? {} : { reads: options.reads }),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    }),
  );
  console.log(JSON.stringify({ name: handle.name, version: handle.version }));
}

export interface CallCommandOptions extends FaasAddresses {
  readonly version?: number;
  readonly consistency?: Consistency;
  readonly timeoutMs?: number;
  readonly async: boolean;
  /** Trace this call and print its trace id on stderr (cli/tracing.ts). */
  readonly trace?: boolean;
}

function callOptions(options: CallCommandOptions): CallOptions {
  return {
    ...(options.version === undefined ? {} : { version: options.version }),
    ...(options.consistency === undefined ? {} : { consistency: options.consistency }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
}

export async function faasCall(name: string, args: readonly string[], options: CallCommandOptions): Promise<void> {
  const values = args.map(parseArg);
  const call = (): Promise<unknown> => withFaas(options, async (faas) => {
    if (!options.async) return faas.call(name, values, callOptions(options));
    const future = await faas.callAsync(name, values, callOptions(options));
    return future.result();
  });
  const result = options.trace === true ? await withTrace('lfaas call', call) : await call();
  console.log(formatResult(result));
}

export interface DagCreateOptions extends FaasAddresses {
  readonly functions: readonly string[];
  readonly edges: readonly string[];
}

/** `a:b` -> ['a', 'b']. */
function parseEdge(text: string): readonly [string, string] {
  const parts = text.split(':');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw new UsageError(`an edge is from:to, got ${JSON.stringify(text)}`);
  return [parts[0]!, parts[1]!];
}

export async function faasDagCreate(name: string, options: DagCreateOptions): Promise<void> {
  if (options.functions.length === 0) throw new UsageError('a DAG needs --functions');
  const edges = options.edges.map(parseEdge);
  await withFaas(options, (faas) => faas.registerDag({ name, functions: [...options.functions], edges }));
  console.log(JSON.stringify({ name, functions: options.functions, edges: edges.map(([from, to]) => `${from}:${to}`) }));
}

export interface DagCallOptions extends CallCommandOptions {
  /** JSON: per function, its arguments (`{"increment":[1]}`). */
  readonly args?: string;
}

export async function faasDagCall(name: string, options: DagCallOptions): Promise<void> {
  let args: Record<string, unknown[]> = {};
  if (options.args !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(options.args) as unknown;
    } catch {
      throw new UsageError(`--args is a JSON object of argument arrays ({"fn":[1]}), got ${options.args}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((list) => !Array.isArray(list))) {
      throw new UsageError(`--args is a JSON object of argument arrays ({"fn":[1]}), got ${options.args}`);
    }
    args = parsed as Record<string, unknown[]>;
  }
  const result = await withFaas(options, async (faas) => {
    if (!options.async) return faas.callDag(name, args, callOptions(options));
    const future = await faas.callDagAsync(name, args, callOptions(options));
    return future.result();
  });
  console.log(formatResult(result));
}

export interface ListOptions extends FaasAddresses {
  readonly json: boolean;
}

export async function faasDagList(options: ListOptions): Promise<void> {
  const dags = await withFaas(options, (faas) => faas.dags());
  if (options.json) {
    console.log(JSON.stringify(dags.map((dag) => ({ name: dag.name, functions: dag.functions, edges: dag.edges.map(([from, to]) => `${from}:${to}`) }))));
    return;
  }
  printTable(
    ['name', 'functions', 'edges'],
    dags.map((dag) => [dag.name, dag.functions.join(','), dag.edges.map(([from, to]) => `${from}:${to}`).join(',') || '-']),
  );
}

export async function faasDagDelete(name: string, options: FaasAddresses): Promise<void> {
  await withFaas(options, (faas) => faas.deleteDag(name));
  console.log(JSON.stringify({ deleted: name }));
}

/** What `lfaas functions` shows of a function. */
function listed(info: FunctionInfo): { name: string; latest: number; versions: readonly number[]; memoryMb: number; timeoutMs: number; keepAlive: string; keepAliveMs: number; reads: readonly string[]; codeBytes: number } {
  return { name: info.name, latest: info.latest, versions: info.versions, memoryMb: info.memoryMb, timeoutMs: info.timeoutMs, keepAlive: info.keepAlive, keepAliveMs: info.keepAliveMs, reads: info.reads, codeBytes: info.codeBytes };
}

export async function faasFunctions(name: string | undefined, options: ListOptions): Promise<void> {
  const infos = await withFaas(options, (faas) => (name === undefined ? faas.functions() : faas.describe(name).then((info) => [info])));
  if (options.json) {
    // One document: the function named, or the array of them all.
    console.log(JSON.stringify(name === undefined ? infos.map(listed) : listed(infos[0]!)));
    return;
  }
  printTable(
    ['name', 'latest', 'versions', 'memoryMb', 'timeoutMs', 'keepAlive', 'codeBytes'],
    infos.map(listed).map((info) => [info.name, String(info.latest), info.versions.join(','), String(info.memoryMb), String(info.timeoutMs), info.keepAlive === 'adaptive' ? 'adaptive' : `fixed ${info.keepAliveMs / 1000}s`, String(info.codeBytes)]),
  );
}

export async function faasDeleteFunction(name: string, options: FaasAddresses & { readonly version?: number }): Promise<void> {
  await withFaas(options, (faas) => faas.deleteFunction(name, options.version ?? 0));
  console.log(JSON.stringify({ deleted: name, version: options.version ?? 'all' }));
}

function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((cells) => cells[column]?.length ?? 0)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  console.log(line(header));
  for (const cells of rows) console.log(line(cells));
}
