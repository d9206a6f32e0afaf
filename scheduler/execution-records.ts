/**
 * What a scheduler keeps in the KVS so that an async call survives the scheduler that accepted it
 * (scheduler/takeover.ts does the work; this file is the keys and the codecs, all pure):
 *
 * | key | lattice | what |
 * | --- | --- | --- |
 * | `lfaas/exec/<callId>` | Lww | the {@link RunRecord}: everything a dispatch needs (functions, versions, arguments, consistency, timeout, result key), the attempt, the state, and the boot that owns it |
 * | `lfaas/sched/lease/<boot>` | Lww | a boot's lease: `{ n, gen }`, rewritten by the boot alone every renewal; `gen` names its current index |
 * | `lfaas/sched/index/<gen>/<boot>` | Map of Lww | the boot's pending runs: call id -> the record's size in bytes, 0 once removed |
 * | `lfaas/sched/boots/<epoch>` | Map of Lww | the known boots: boot id -> 1 (registered) or 0 (gone: every run of it was handled) |
 * | `lfaas/sched/boots-epoch` | Max | which `boots/<epoch>` is current |
 *
 * A boot is `<address>#<incarnation>` (the address alone for a scheduler started without a nonce).
 *
 * Why a Map of Lww for the index and the boots (an LWW-element set) and not another lattice of
 * lattices/: entries must be removed, and by more than one writer (the owner removes what finished,
 * a scheduler that takes a run over removes it from the dead boot's index, any scheduler marks a
 * dead boot gone) whose writes reach the replicas in any order. A `GSet` cannot remove at all. One
 * `Lww` holding the whole set is right only for a single writer, and every write would carry the
 * whole set (a write per call of the size of every pending call). A `MapLattice` merges key by
 * key, so a write carries one entry (a delta), concurrent writes to different entries all survive,
 * and each entry is its own `Lww`: a removal written after the writer observed the add's timestamp
 * (the scheduler folds every timestamp it read into its hybrid clock first) is later in the total
 * order, so it wins on every replica whatever the merge order. The price is that a removed entry
 * stays as a tombstone (0): the index is rewritten into a fresh generation by its owner once
 * tombstones outnumber the pending entries, and the boots set into a fresh epoch (takeover.ts).
 *
 * Everything read back is hostile: every reader here validates every field and throws
 * LATTICE_DECODE (the caller skips the entry and counts it) rather than trust a shape.
 */
import { ErrorCode, LfaasError, Lww, MapLattice, Max } from '../lattices/index.js';
import type { AnyLattice, HybridClock, Timestamp } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, NAME_PATTERN, resultKeyOf } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';
import { DAG_FUNCTIONS_MAX, dagShape } from './dag.js';

export const BOOTS_EPOCH_KEY = 'lfaas/sched/boots-epoch';

export function bootsKey(epoch: number): string {
  return `lfaas/sched/boots/${epoch}`;
}

export function leaseKey(boot: string): string {
  return `lfaas/sched/lease/${boot}`;
}

export function indexKey(boot: string, gen: number): string {
  return `lfaas/sched/index/${gen}/${boot}`;
}

/** A record's encoding at most: the largest value the platform carries (a KVS reply holds 8 MiB). */
export const RUN_RECORD_BYTES_MAX = DEFAULT_MAX_VALUE_BYTES;
/** Arguments of one function in a record, at most. */
export const RECORD_ARGS_MAX = 4096;
/** A call id's UTF-8 bytes at most: its result key must be a KVS key (1,024 bytes at most). */
export const CALL_ID_BYTES_MAX = 1024 - resultKeyOf('').length;
/** A boot id's length at most (an address of 316 characters, `#`, a nonce). */
export const BOOT_ID_MAX = 400;
/** Attempts a record may name, at most (a hostile record's count is refused beyond). */
export const ATTEMPT_MAX = 1000;
/** The index generation and boots epoch a record may name, at most. */
export const GEN_MAX = 2 ** 40;
const TRACE_ID_MAX = 256;
const CONSISTENCY_MAX = 3;
const UINT32_MAX = 0xffff_ffff;

export type RunState = 'accepted' | 'running' | 'done';
const STATES: readonly RunState[] = ['accepted', 'running', 'done'];

/** An argument as a schedule carries it: a msgpack value, or a KVS key read when the function runs. */
export type RecordedArgument = { readonly value: Uint8Array } | { readonly reference: string };

export interface RecordedFunction {
  readonly name: string;
  readonly version: number;
  readonly args: readonly RecordedArgument[];
  readonly successors: readonly string[];
  /** Its parents in edge order (the order of their results in its arguments). */
  readonly parents: readonly string[];
  /** Calls of it running at once at most, per scheduler (0: no limit). */
  readonly concurrencyLimit: number;
}

/**
 * An async call's execution record (`lfaas/exec/<callId>`). A `done` record carries no
 * functions (its arguments are not kept once the result is written).
 */
export interface RunRecord {
  readonly callId: string;
  /** The boot that dispatches it (its lease says whether it lives). */
  readonly owner: string;
  readonly state: RunState;
  readonly attempt: number;
  /** The DAG's name; '' for a call of one function. */
  readonly dag: string;
  readonly functions: readonly RecordedFunction[];
  readonly consistency: number;
  readonly timeoutMs: number;
  readonly resultKey: string;
  readonly traceId: string;
  /** The executor lost before the latest attempt ('' if none). */
  readonly executor: string;
  readonly atMs: number;
}

function bad(what: string): LfaasError {
  return new LfaasError(ErrorCode.LATTICE_DECODE, `a stored ${what} has the wrong shape`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function intIn(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw bad(what);
  return value;
}

function stringUpTo(value: unknown, max: number, what: string): string {
  if (typeof value !== 'string' || value.length > max) throw bad(what);
  return value;
}

export function isCallId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= CALL_ID_BYTES_MAX && Buffer.byteLength(value) <= CALL_ID_BYTES_MAX;
}

export function isBootId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= BOOT_ID_MAX;
}

/** The plain value a record is stored as (what `Lww.write` gets). */
export function runRecordValue(record: RunRecord): Record<string, unknown> {
  return {
    v: 1,
    callId: record.callId,
    owner: record.owner,
    state: record.state,
    attempt: record.attempt,
    // `target` as the first records had it (a DAG's name or the function's).
    target: record.dag || record.functions[0]?.name || '',
    dag: record.dag,
    functions: record.functions.map((fn) => ({
      name: fn.name,
      version: fn.version,
      args: fn.args.map((argument) => ('value' in argument ? { v: argument.value } : { r: argument.reference })),
      successors: [...fn.successors],
      parents: [...fn.parents],
      limit: fn.concurrencyLimit,
    })),
    consistency: record.consistency,
    timeoutMs: record.timeoutMs,
    resultKey: record.resultKey,
    traceId: record.traceId,
    executor: record.executor,
    atMs: record.atMs,
  };
}

/** A record as a lattice stamped by `clock`; throws EXEC_BAD_VALUE when its encoding is over RUN_RECORD_BYTES_MAX. */
export function encodeRunRecord(clock: HybridClock, record: RunRecord): { readonly value: Lww; readonly bytes: number } {
  for (const fn of record.functions) {
    if (fn.args.length > RECORD_ARGS_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `an async call of ${fn.name} with ${fn.args.length} arguments; at most ${RECORD_ARGS_MAX}`);
  }
  const value = Lww.write(clock, runRecordValue(record));
  const bytes = value.encode().byteLength;
  if (bytes > RUN_RECORD_BYTES_MAX) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the execution record of async call ${record.callId.slice(0, 100)} would take ${bytes} bytes; at most ${RUN_RECORD_BYTES_MAX} (its arguments are too large for an async call)`);
  }
  return { value, bytes };
}

function argumentOf(raw: unknown): RecordedArgument {
  if (!isObject(raw)) throw bad('execution record argument');
  const keys = Object.keys(raw);
  if (keys.length !== 1) throw bad('execution record argument');
  if (keys[0] === 'v' && raw['v'] instanceof Uint8Array) return { value: raw['v'] };
  if (keys[0] === 'r' && typeof raw['r'] === 'string' && raw['r'].length > 0 && Buffer.byteLength(raw['r']) <= 1024) return { reference: raw['r'] };
  throw bad('execution record argument');
}

function namesOf(raw: unknown, what: string): string[] {
  if (!Array.isArray(raw) || raw.length > DAG_FUNCTIONS_MAX) throw bad(what);
  const names = raw.map((name) => {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) throw bad(what);
    return name;
  });
  if (new Set(names).size !== names.length) throw bad(what);
  return names;
}

function functionOf(raw: unknown): RecordedFunction {
  if (!isObject(raw)) throw bad('execution record function');
  const name = raw['name'];
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) throw bad('execution record function name');
  const args = raw['args'];
  if (!Array.isArray(args) || args.length > RECORD_ARGS_MAX) throw bad('execution record arguments');
  return {
    name,
    version: intIn(raw['version'], 1, UINT32_MAX, 'execution record version'),
    args: args.map(argumentOf),
    successors: namesOf(raw['successors'], 'execution record successors'),
    parents: namesOf(raw['parents'], 'execution record parents'),
    concurrencyLimit: intIn(raw['limit'], 0, UINT32_MAX, 'execution record concurrency limit'),
  };
}

/**
 * The functions of a record form one run: each name once, every edge between listed functions
 * (a function's successors are exactly the functions that name it as a parent), no cycle, one
 * sink; a call of one function is one function without edges.
 */
function checkShape(dag: string, functions: readonly RecordedFunction[]): void {
  if (functions.length === 0 || functions.length > DAG_FUNCTIONS_MAX) throw bad('execution record functions');
  if (dag === '' && functions.length !== 1) throw bad('execution record functions');
  const names = functions.map((fn) => fn.name);
  const edges: [string, string][] = [];
  for (const fn of functions) for (const parent of fn.parents) edges.push([parent, fn.name]);
  for (const fn of functions) {
    const expected = functions.filter((other) => other.parents.includes(fn.name)).map((other) => other.name);
    if (expected.length !== fn.successors.length || expected.some((name) => !fn.successors.includes(name))) throw bad('execution record successors');
  }
  try {
    dagShape({ name: dag || names[0]!, functions: names, edges });
  } catch {
    throw bad('execution record DAG');
  }
}

/**
 * The record stored under `executionKey(callId)`, checked: an Lww of a version-1 record of this
 * very call (its result key the call's own: a record naming another key could make a scheduler
 * write a result over any key), every field in range, the functions one run (checkShape), its
 * encoding within RUN_RECORD_BYTES_MAX. Undefined when absent; LATTICE_DECODE for anything else.
 */
export function decodeRunRecord(value: AnyLattice | undefined, callId: string): RunRecord | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Lww)) throw bad('execution record');
  const raw: unknown = value.reveal();
  if (!isObject(raw) || raw['v'] !== 1) throw bad('execution record');
  if (raw['callId'] !== callId || !isCallId(callId)) throw bad('execution record call id');
  if (raw['resultKey'] !== resultKeyOf(callId)) throw bad('execution record result key');
  const owner = raw['owner'];
  if (!isBootId(owner)) throw bad('execution record owner');
  const state = raw['state'];
  if (typeof state !== 'string' || !(STATES as readonly string[]).includes(state)) throw bad('execution record state');
  const dag = stringUpTo(raw['dag'], 200, 'execution record DAG');
  if (dag !== '' && !NAME_PATTERN.test(dag)) throw bad('execution record DAG');
  const functionsRaw = raw['functions'];
  if (!Array.isArray(functionsRaw) || functionsRaw.length > DAG_FUNCTIONS_MAX) throw bad('execution record functions');
  const functions = functionsRaw.map(functionOf);
  if (state !== 'done' || functions.length > 0) checkShape(dag, functions);
  const record: RunRecord = {
    callId,
    owner,
    state: state as RunState,
    attempt: intIn(raw['attempt'], 1, ATTEMPT_MAX, 'execution record attempt'),
    dag,
    functions,
    consistency: intIn(raw['consistency'], 0, CONSISTENCY_MAX, 'execution record consistency'),
    timeoutMs: intIn(raw['timeoutMs'], 0, UINT32_MAX, 'execution record timeout'),
    resultKey: raw['resultKey'] as string,
    traceId: stringUpTo(raw['traceId'], TRACE_ID_MAX, 'execution record trace id'),
    executor: stringUpTo(raw['executor'], BOOT_ID_MAX, 'execution record executor'),
    atMs: intIn(raw['atMs'], 0, Number.MAX_SAFE_INTEGER, 'execution record time'),
  };
  if (value.encode().byteLength > RUN_RECORD_BYTES_MAX) throw bad('execution record (too large)');
  return record;
}

/** A recorded argument as a schedule carries it. */
export function argumentToWire(argument: RecordedArgument): PbTypes.IArgument {
  return 'value' in argument ? { value: argument.value } : { reference: argument.reference };
}

/** A call's argument as a record keeps it (an argument with neither is an empty value). */
export function argumentFromWire(argument: PbTypes.IArgument): RecordedArgument {
  if (argument.reference) return { reference: argument.reference };
  return { value: argument.value ?? new Uint8Array(0) };
}

// ---- the index of a boot's pending runs ---------------------------------------------------------

/** An index write: one entry, `bytes` > 0 (pending, the record's size) or 0 (removed). */
export function indexEntry(clock: HybridClock, callId: string, bytes: number): MapLattice {
  return MapLattice.EMPTY.set(callId, Lww.write(clock, bytes));
}

/** A whole index (a new generation): every entry pending. */
export function indexOf(clock: HybridClock, entries: Iterable<readonly [string, number]>): MapLattice {
  let map = MapLattice.EMPTY;
  for (const [callId, bytes] of entries) map = map.set(callId, Lww.write(clock, bytes));
  return map;
}

export interface IndexEntry {
  readonly callId: string;
  readonly bytes: number;
  readonly at: Timestamp;
}

export interface IndexView {
  /** Pending entries, in key order (at most `limit`). */
  readonly pending: IndexEntry[];
  /** Entries removed (tombstones). */
  readonly removed: number;
  /** Entries that did not decode (skipped). */
  readonly malformed: number;
}

/**
 * A boot's index as read from the KVS (undefined: absent): its pending entries, at most `limit`
 * of them (in key order). LATTICE_DECODE when it is not a Map at all; a malformed entry (a key that
 * is no call id, a value that is no Lww of a size) is skipped and counted.
 */
export function readIndex(value: AnyLattice | undefined, limit = Number.POSITIVE_INFINITY): IndexView {
  if (value === undefined) return { pending: [], removed: 0, malformed: 0 };
  if (!(value instanceof MapLattice)) throw bad('run index');
  const pending: IndexEntry[] = [];
  let removed = 0;
  let malformed = 0;
  for (const [callId, entry] of value.entries) {
    const bytes = entry instanceof Lww ? entry.value : undefined;
    if (!isCallId(callId) || !(entry instanceof Lww) || typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0 || bytes > RUN_RECORD_BYTES_MAX) {
      malformed++;
      continue;
    }
    if (bytes === 0) removed++;
    else if (pending.length < limit) pending.push({ callId, bytes, at: entry.timestamp });
  }
  return { pending, removed, malformed };
}

// ---- the boots --------------------------------------------------------------------------------

export interface BootEntry {
  readonly live: boolean;
  readonly at: Timestamp;
  readonly lww: Lww;
}

/** A registration (`live`) or a gone mark of `boot`. */
export function bootEntry(clock: HybridClock, boot: string, live: boolean): MapLattice {
  return MapLattice.EMPTY.set(boot, Lww.write(clock, live ? 1 : 0));
}

/**
 * The union of boots maps read from the KVS (absent ones skipped): per boot the merge of its
 * entries. A value that is no Map is skipped whole, an entry that is no boot id with an Lww of 0
 * or 1 is skipped; both counted in `malformed`. At most `limit` boots (in key order per map).
 */
export function readBoots(values: readonly (AnyLattice | undefined)[], limit: number): { readonly boots: Map<string, BootEntry>; readonly malformed: number } {
  const boots = new Map<string, BootEntry>();
  let malformed = 0;
  for (const value of values) {
    if (value === undefined) continue;
    if (!(value instanceof MapLattice)) {
      malformed++;
      continue;
    }
    for (const [boot, entry] of value.entries) {
      if (!isBootId(boot) || !(entry instanceof Lww) || (entry.value !== 0 && entry.value !== 1)) {
        malformed++;
        continue;
      }
      const known = boots.get(boot);
      if (known === undefined && boots.size >= limit) continue;
      const lww = known === undefined ? entry : (known.lww.merge(entry) as Lww);
      boots.set(boot, { live: lww.value === 1, at: lww.timestamp, lww });
    }
  }
  return { boots, malformed };
}

/** A boots map of the given entries as they were read (their own timestamps: a copy, not a new write). */
export function bootsOf(entries: Iterable<readonly [string, BootEntry]>): MapLattice {
  let map = MapLattice.EMPTY;
  for (const [boot, entry] of entries) map = map.set(boot, entry.lww);
  return map;
}

/** The current boots epoch (0 when absent); LATTICE_DECODE for anything but a Max of an integer in range. */
export function readEpoch(value: AnyLattice | undefined): number {
  if (value === undefined) return 0;
  if (!(value instanceof Max)) throw bad('boots epoch');
  return intIn(value.value, 0, GEN_MAX, 'boots epoch');
}

// ---- leases -----------------------------------------------------------------------------------

export interface LeaseView {
  /** What changes at every renewal (its timestamp and count): an observer compares it with the last one it saw. */
  readonly version: string;
  /** The owner's current index generation. */
  readonly gen: number;
}

export function leaseValue(clock: HybridClock, renewals: number, gen: number): Lww {
  return Lww.write(clock, { n: renewals, gen });
}

/** A boot's lease as read (undefined: absent); LATTICE_DECODE for anything but an Lww of `{ n, gen }` in range. */
export function readLease(value: AnyLattice | undefined): LeaseView | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Lww)) throw bad('scheduler lease');
  const raw: unknown = value.value;
  if (!isObject(raw)) throw bad('scheduler lease');
  const n = intIn(raw['n'], 0, Number.MAX_SAFE_INTEGER, 'scheduler lease');
  const gen = intIn(raw['gen'], 0, GEN_MAX, 'scheduler lease');
  return { version: `${value.wallMs}.${value.logical}.${n}`, gen };
}
