/**
 * What the FaaS tier keeps in the KVS, and under which keys: the one place schedulers, executors
 * and the SDK agree on it (each reads what another wrote).
 *
 * | key | lattice | what |
 * | --- | --- | --- |
 * | `lfaas/functions` | GSet of names | every function name ever registered (deleted ones have no index) |
 * | `lfaas/function/<name>` | Max | the latest version (the name's index) |
 * | `lfaas/function/<name>@<version>` | Priority | the {@link FunctionRecord}: code and metadata; the first registration of a version wins |
 * | `lfaas/dags` | GSet of names | every DAG name ever registered |
 * | `lfaas/dag/<name>` | Lww | the {@link DagRecord} |
 * | `lfaas/exec/<callId>` | Lww | an async call's leased execution record (scheduler/execution-records.ts, with the `lfaas/sched/*` leases and indexes of scheduler boots) |
 * | `lfaas/result/<callId>` | Priority | the {@link ResultRecord} of an async call, by attempt: the first attempt's result wins, so a re-executed call's writes are idempotent |
 */
import { ErrorCode, LatticeType, LfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';

/** Every key under this prefix is the platform's: written only by the roles that own it (message-rights.ts). */
export const SYSTEM_KEY_PREFIX = 'lfaas/';

export function isSystemKey(key: string): boolean {
  return key.startsWith(SYSTEM_KEY_PREFIX);
}

export const FUNCTIONS_KEY = 'lfaas/functions';
export const DAGS_KEY = 'lfaas/dags';

export function functionIndexKey(name: string): string {
  return `lfaas/function/${name}`;
}

export function functionKey(name: string, version: number): string {
  return `lfaas/function/${name}@${version}`;
}

export function dagKey(name: string): string {
  return `lfaas/dag/${name}`;
}

export function executionKey(callId: string): string {
  return `lfaas/exec/${callId}`;
}

export function resultKeyOf(callId: string): string {
  return `lfaas/result/${callId}`;
}

/**
 * Function and DAG names: what may appear in a key and on a command line without quoting; an
 * owner's names start with its namespace (`alice/resize`, owner-access.ts).
 */
export const NAME_PATTERN = /^(?:[a-z0-9][a-z0-9_-]{0,62}\/)?[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/** A registered function version. */
export interface FunctionRecord {
  readonly name: string;
  readonly version: number;
  readonly code: string;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly keepAliveMs: number;
  /** `fixed` (keep `keepAliveMs` after each call) or `adaptive` (a histogram of its idle times decides). */
  readonly keepAlivePolicy: KeepAlivePolicyName;
  /** Keys it reads, prefetched when its run is scheduled: exact keys, or prefixes ending in `*`. */
  readonly reads: readonly string[];
  /** Calls of it running at once at most, per scheduler (0: no limit; see the scheduler). */
  readonly concurrencyLimit: number;
  readonly registeredAtMs: number;
  /** The bundle's source map (JSON), when it was registered with one: executors map stack traces with it. */
  readonly sourceMap?: string;
}

/** A function's source map, at most (bytes; the registry refuses more). */
export const SOURCE_MAP_BYTES_MAX = 1024 * 1024;

export type KeepAlivePolicyName = 'fixed' | 'adaptive';
export const KEEP_ALIVE_POLICIES: readonly KeepAlivePolicyName[] = ['fixed', 'adaptive'];
/** McGrath and Brenner's expiry: the `fixed` policy's window unless the function names one. */
export const DEFAULT_KEEP_ALIVE_MS = 15 * 60_000;
/** Entries of a function's `reads`, at most, and the bytes of one. */
export const READS_MAX = 32;
export const READ_BYTES_MAX = 1024;

/**
 * Why a function's `reads` cannot be used (undefined: it can): at most READS_MAX entries, each a
 * key of 1 to READ_BYTES_MAX bytes; a `*` only as the last character (a prefix), and not alone
 * (every key of the KVS is no read set).
 */
export function readsProblem(reads: readonly unknown[]): string | undefined {
  if (reads.length > READS_MAX) return `reads has ${reads.length} entries; at most ${READS_MAX}`;
  for (const entry of reads) {
    if (typeof entry !== 'string' || entry.length === 0 || Buffer.byteLength(entry) > READ_BYTES_MAX) return `a reads entry must be a key of 1 to ${READ_BYTES_MAX} bytes`;
    const star = entry.indexOf('*');
    if (star >= 0 && (star !== entry.length - 1 || entry.length === 1)) return `reads entry ${JSON.stringify(entry.slice(0, 64))}: \`*\` may only end a prefix`;
  }
  return undefined;
}

export interface DagRecord {
  readonly name: string;
  readonly functions: readonly string[];
  /** `[from, to]` pairs. */
  readonly edges: readonly (readonly [string, string])[];
}

/** An async call's outcome: the msgpack result, or the typed error. */
export type ResultRecord = { readonly ok: true; readonly value: Uint8Array } | { readonly ok: false; readonly code: string; readonly message: string; readonly stack?: string };

function bad(what: string): LfaasError {
  return new LfaasError(ErrorCode.LATTICE_DECODE, `a stored ${what} has the wrong shape`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A numeric field: absent (the default), or a finite number; anything else is a wrong shape. */
function numberField(record: Record<string, unknown>, field: string, fallback: number, what: string): number {
  const value = record[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(what);
  return value;
}

function stringOf(value: unknown, what: string): string {
  if (typeof value !== 'string') throw bad(what);
  return value;
}

/** The record a function key's value holds (a Priority or Lww of it). */
export function functionRecordOf(value: AnyLattice | undefined): FunctionRecord | undefined {
  if (value === undefined) return undefined;
  const record = value.reveal();
  if (!isObject(record) || typeof record['name'] !== 'string' || typeof record['code'] !== 'string' || !Number.isSafeInteger(record['version'])) throw bad('function');
  return {
    name: record['name'],
    version: record['version'] as number,
    code: record['code'],
    memoryMb: numberField(record, 'memoryMb', 128, 'function'),
    timeoutMs: numberField(record, 'timeoutMs', 60_000, 'function'),
    keepAliveMs: numberField(record, 'keepAliveMs', DEFAULT_KEEP_ALIVE_MS, 'function'),
    keepAlivePolicy: keepAlivePolicyField(record['keepAlivePolicy']),
    reads: readsField(record['reads']),
    // Records before the limit was enforced carry `concurrency: 1`, which limited nothing: not read.
    concurrencyLimit: numberField(record, 'concurrencyLimit', 0, 'function'),
    registeredAtMs: numberField(record, 'registeredAtMs', 0, 'function'),
    // Hostile like the rest: a string of bounded size, or nothing.
    ...(typeof record['sourceMap'] === 'string' && record['sourceMap'].length > 0 && Buffer.byteLength(record['sourceMap']) <= SOURCE_MAP_BYTES_MAX ? { sourceMap: record['sourceMap'] } : {}),
  };
}

function keepAlivePolicyField(value: unknown): KeepAlivePolicyName {
  if (value === undefined || value === null) return 'fixed';
  if (!KEEP_ALIVE_POLICIES.includes(value as KeepAlivePolicyName)) throw bad('function');
  return value as KeepAlivePolicyName;
}

function readsField(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || readsProblem(value) !== undefined) throw bad('function');
  return value as string[];
}

export function dagRecordOf(value: AnyLattice | undefined): DagRecord | undefined {
  if (value === undefined) return undefined;
  const record = value.reveal();
  if (!isObject(record) || typeof record['name'] !== 'string' || !Array.isArray(record['functions']) || !Array.isArray(record['edges'])) throw bad('DAG');
  return {
    name: record['name'],
    functions: (record['functions'] as unknown[]).map((name) => stringOf(name, 'DAG')),
    edges: (record['edges'] as unknown[]).map((edge) => {
      if (!Array.isArray(edge) || edge.length !== 2) throw bad('DAG edge');
      return [stringOf(edge[0], 'DAG edge'), stringOf(edge[1], 'DAG edge')] as const;
    }),
  };
}

export function resultRecordOf(value: AnyLattice | undefined): ResultRecord | undefined {
  if (value === undefined) return undefined;
  if (value.type !== LatticeType.Priority) throw bad('result');
  const record = value.reveal();
  if (!isObject(record)) throw bad('result');
  if (record['ok'] === true && record['value'] instanceof Uint8Array) return { ok: true, value: record['value'] };
  if (record['ok'] === false) {
    // A function's failure may carry its (mapped) stack trace: text, bounded where it is shown.
    const stack = record['stack'];
    return { ok: false, code: stringOf(record['code'], 'result'), message: stringOf(record['message'] ?? '', 'result'), ...(typeof stack === 'string' && stack.length > 0 ? { stack } : {}) };
  }
  throw bad('result');
}
