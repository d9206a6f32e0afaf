/**
 * The scheduler and executor machines in the deterministic simulator (faas-cluster.ts): real
 * SchedulerNode and ExecutorNode machines, a simulated KVS and executor host, a client machine
 * that registers functions and DAGs through a scheduler and calls them. Properties, each over many
 * seeds (LFAAS_LONG=1 for 20 times more; LFAAS_SEED=n for one):
 * 1. without faults every sync call and DAG call (linear, diamonds whose sink takes its parents in
 *    a given order, failing and timing-out ones) answers exactly what the functions compute;
 * 2. under message loss, duplication and reordering every call ends, with the right result or a
 *    typed error that a lost frame explains (EXEC_TIMEOUT: a schedule or trigger of the run was
 *    lost; a client-side timeout: the call, a schedule or the answer was lost), and none ever
 *    answers a wrong result; every async call the scheduler received ends in the KVS;
 * 3. an executor crashed in the middle of the calls (and, in half the runs, restarted after the
 *    scheduler noticed): each sync call ends in time with its right result or EXEC_LOST, and every
 *    async call ends with its right result in the KVS (dispatched again to the survivors);
 * 4. an executor crashed and restarted quickly (100-300 ms later, well within the scheduler's
 *    failure timeout): the scheduler tells the new boot from its heartbeat's incarnation and fails
 *    the old boot at once, so each sync call ends with its right result or EXEC_LOST (never
 *    EXEC_TIMEOUT or a client timeout) and every async call ends with its right result;
 * 5. the only executor crashed while async calls run, and restarted (or another executor joined)
 *    well after the scheduler declared it dead: the re-dispatches that found no executor wait for
 *    one, and every async call ends with its right result (no SCHED_NO_CAPACITY); (staged) one
 *    that no executor ever takes waits until its deadline, then SCHED_NO_CAPACITY is its result;
 * 6. (the race behind 3, staged) a re-dispatch replaces the earlier attempt's run on an executor
 *    and keeps the parents' results that reached that run;
 * 7. a scheduler crashed with async calls pending (some dispatched, some waiting for room on
 *    saturated executors), under the loss, duplication and reordering of 2: restarted 0.1-3 s later
 *    (one scheduler; the new boot takes its previous boot's runs over at once), or with a second
 *    scheduler surviving it (which takes them over once the lease expired; in some runs the crashed
 *    one restarts late too, and both may claim): every async call the crashed scheduler accepted
 *    ends with its right result in the KVS, and no call ever answers or stores a wrong result;
 * 8. one seed, one trace.
 * A failure names every wrong call and the command that reruns its seed.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ErrorCode, Priority } from '../../lattices/index.js';
import { decodeValue, encodeValue, envelopeWith, resultRecordOf } from '../../protocol/index.js';
import type { Random } from '../../protocol/index.js';
import { Simulation, forEachSeed, seedCount } from '../simulator/simulation.js';
import { rogue } from '../simulator/rogue.js';
import { buildFaasCluster, executorName, expectedOf } from './faas-cluster.js';
import type { CallOutcome, CallRecord, ClientCall, DelayRange, Expected, FaasClient, FaasSim, PlannedCall, SetupStep, SimDag, SimFunction } from './faas-cluster.js';

const FILE = 'test/simulation/faas.test.ts';

const num = (value: unknown): number => value as number;

function registry(runMs: DelayRange): Map<string, SimFunction> {
  return new Map<string, SimFunction>([
    ['inc', { fn: (x) => num(x) + 1, runMs }],
    ['double', { fn: (x) => num(x) * 2, runMs }],
    ['square', { fn: (x) => num(x) * num(x), runMs }],
    ['sub', { fn: (a, b) => num(a) - num(b), runMs }],
    ['pair', { fn: (a, b, tag) => ({ first: a, second: b, tag }), runMs }],
    ['join', { fn: (...parts) => parts.map(String).join('+'), runMs }],
    [
      'boom',
      {
        fn: () => {
          throw new Error('boom');
        },
        runMs,
      },
    ],
    // Always longer than the budget its calls give it.
    ['slow', { fn: (x) => x, runMs: { min: 5000, max: 6000 } }],
  ]);
}

/** DAGs as the SDK builder makes them: a sink's parents in the order given, not in topological order. */
const DAGS = new Map<string, SimDag>(
  (
    [
      { name: 'linear', functions: ['inc', 'double', 'square'], edges: [['inc', 'double'], ['double', 'square']] },
      // sub(square(inc x), double(inc x)): the sink's parents listed square first.
      { name: 'diamond', functions: ['inc', 'double', 'square', 'sub'], edges: [['inc', 'double'], ['inc', 'square'], ['square', 'sub'], ['double', 'sub']] },
      // join(square(inc x), inc x, double(inc x), own): four parents' worth of ordering.
      { name: 'fan', functions: ['inc', 'double', 'square', 'join'], edges: [['inc', 'double'], ['inc', 'square'], ['square', 'join'], ['inc', 'join'], ['double', 'join']] },
      // Two sources with their own arguments: pair(square(a), double(b), tag).
      { name: 'twosources', functions: ['double', 'square', 'pair'], edges: [['square', 'pair'], ['double', 'pair']] },
      { name: 'failing', functions: ['inc', 'boom', 'double'], edges: [['inc', 'boom'], ['boom', 'double']] },
      { name: 'slowdag', functions: ['inc', 'slow', 'double'], edges: [['inc', 'slow'], ['slow', 'double']] },
    ] satisfies SimDag[]
  ).map((dag) => [dag.name, dag]),
);

const SETUP: SetupStep[] = [
  ...['inc', 'double', 'square', 'sub', 'pair', 'join', 'boom', 'slow'].map((name): SetupStep => ({ kind: 'function', name, timeoutMs: 60_000 })),
  ...[...DAGS.values()].map((dag): SetupStep => ({ kind: 'dag', dag })),
];

const CALL_TIMEOUT_MS = 3000;
const SHORT_TIMEOUT_MS = 1500;

/** One random call of the workload. */
function randomCall(random: Random, async: boolean): ClientCall {
  const n = random.int(200) - 100;
  const m = random.int(50);
  const call = (fn: string, args: unknown[], timeoutMs = CALL_TIMEOUT_MS): ClientCall => ({ kind: 'call', fn, args, timeoutMs, async });
  const dag = (name: string, args: Record<string, unknown[]>, timeoutMs = CALL_TIMEOUT_MS): ClientCall => ({ kind: 'dag', dag: name, args, timeoutMs, async });
  switch (random.int(14)) {
    case 0:
      return call('inc', [n]);
    case 1:
      return call(random.chance(0.5) ? 'double' : 'square', [n]);
    case 2:
      return call('sub', [n, m]);
    case 3:
      return call('pair', [n, m, `t${m}`]);
    case 4:
      return random.chance(0.5) ? call('boom', []) : call('slow', [n], SHORT_TIMEOUT_MS);
    case 5:
    case 6:
      return dag('linear', { inc: [n] });
    case 7:
    case 8:
      return dag('diamond', { inc: [n] });
    case 9:
      return dag('fan', { inc: [n], join: [`z${m}`] });
    case 10:
    case 11:
      return dag('twosources', { square: [n], double: [m], pair: ['t'] });
    case 12:
      return dag('failing', { inc: [n] });
    default:
      return random.chance(0.5) ? dag('slowdag', { inc: [n] }, SHORT_TIMEOUT_MS) : dag('linear', { inc: [m] });
  }
}

function planCalls(random: Random, count: number, windowMs: number, asyncShare: number): PlannedCall[] {
  return Array.from({ length: count }, () => ({ atMs: random.int(windowMs), call: randomCall(random, random.chance(asyncShare)) }));
}

/**
 * clean, faults: properties 1 and 2; crash: 3; quick: 4 (a restart within the failure timeout);
 * noroom: 5 (one executor, back only after the scheduler declared it dead).
 */
type Kind = 'clean' | 'faults' | 'crash' | 'quick' | 'noroom';
type CrashKind = 'crash' | 'quick' | 'noroom';

interface Run {
  readonly fs: FaasSim;
  readonly client: FaasClient;
  readonly functions: Map<string, SimFunction>;
  /** When the executor crashed, and when it came back (crash runs). */
  readonly crashAtMs: number | undefined;
  readonly restartAtMs: number | undefined;
  readonly victim: string | undefined;
  /** Runs the victim held when it crashed. */
  readonly victimRuns: number;
  /** An executor added after the crash instead of the victim's restart (noroom runs). */
  readonly joined: string | undefined;
}

const CALLS_WINDOW_MS = 2000;
/** noroom runs: every call is sent in this window after the setup, before the crash can be noticed. */
const NOROOM_WINDOW_MS = 1000;
const RUN_MS = 25_000;

function run(seed: number, kind: Kind): Run {
  const sim = new Simulation({
    seed,
    delayMs: { min: 1, max: 5 },
    dropRate: kind === 'faults' ? 0.03 : 0,
    duplicateRate: kind === 'faults' ? 0.03 : 0,
    reorder: kind === 'faults',
    authenticate: true,
  });
  const crashes = kind === 'crash' || kind === 'quick' || kind === 'noroom';
  const functions = registry(crashes ? { min: 20, max: 200 } : { min: 1, max: 20 });
  const fs = buildFaasCluster(sim, { schedulers: crashes ? 1 : 2, executors: kind === 'noroom' ? 1 : 3 }, functions);
  const workload = sim.random.fork();
  const calls =
    kind === 'noroom' ? planCalls(workload, 50, NOROOM_WINDOW_MS, 0.7) : planCalls(workload, kind === 'clean' ? 40 : 50, CALLS_WINDOW_MS, kind === 'clean' ? 0.25 : 0.35);
  const client = fs.addClient('client', { setup: SETUP, calls });
  // Membership modelled: a non-member heartbeats to every scheduler as an executor with room and
  // every function warm; had it been believed, runs would go to it and never be answered.
  sim.add('rogue', () => rogue(sim.address('rogue'), fs.schedulerIds.map((id) => sim.address(id)), 100));
  let crashAtMs: number | undefined;
  let restartAtMs: number | undefined;
  let victim: string | undefined;
  let victimRuns = 0;
  let joined: string | undefined;
  if (kind === 'quick') {
    sim.runFor(600 + workload.int(1200));
    victim = executorName(workload.int(3));
    crashAtMs = sim.clock.now();
    victimRuns = fs.executor(victim)?.runCount ?? 0;
    sim.crash(victim);
    // Back well within the scheduler's failure timeout (600 ms): only its incarnation tells.
    sim.runFor(100 + workload.int(201));
    restartAtMs = sim.clock.now();
    sim.restart(victim);
  }
  if (kind === 'noroom') {
    for (let i = 0; i < 100 && client.setupDoneAtMs === undefined; i++) sim.runFor(50);
    // Mid-calls: the last call goes out (NOROOM_WINDOW_MS after the setup) at most 400 ms after
    // the crash, before the scheduler can declare the executor dead (>= 500 ms after it).
    sim.runFor(600 + workload.int(400));
    victim = executorName(0);
    crashAtMs = sim.clock.now();
    victimRuns = fs.executor(victim)?.runCount ?? 0;
    sim.crash(victim);
    // Well after the failure timeout: the re-dispatches have found no executor for a while.
    sim.runFor(1000 + workload.int(2000));
    restartAtMs = sim.clock.now();
    if (workload.chance(0.5)) sim.restart(victim);
    else {
      joined = executorName(1);
      fs.addExecutor(joined);
    }
  }
  if (kind === 'crash') {
    // The setup ends near 300 ms plus a few ms per step; crash mid-calls.
    sim.runFor(600 + workload.int(1200));
    victim = executorName(workload.int(3));
    crashAtMs = sim.clock.now();
    victimRuns = fs.executor(victim)?.runCount ?? 0;
    sim.crash(victim);
    if (workload.chance(0.5)) {
      sim.runFor(2000 + workload.int(1000));
      restartAtMs = sim.clock.now();
      sim.restart(victim);
    }
  }
  // Long enough for an async call whose schedule was lost to be dispatched twice more (each after
  // its deadline and the scheduler's grace).
  sim.runFor(RUN_MS - sim.clock.now());
  expect(sim.unauthorised, 'the rogue\'s heartbeats were refused').toBeGreaterThan(0);
  return { fs, client, functions, crashAtMs, restartAtMs, victim, victimRuns, joined };
}

function describeOutcome(outcome: CallOutcome | undefined): string {
  if (outcome === undefined) return 'nothing';
  switch (outcome.kind) {
    case 'result':
      return `result ${JSON.stringify(outcome.value)}`;
    case 'error':
      return `${outcome.code} (${outcome.message})`;
    default:
      return outcome.kind;
  }
}

function describeCall(record: CallRecord): string {
  const call = record.call;
  const what = call.kind === 'call' ? `${call.fn}(${JSON.stringify(call.args)})` : `dag ${call.dag} ${JSON.stringify(call.args)}`;
  return `${record.callId} ${call.async ? 'async ' : ''}${what} sent at ${record.sentAtMs} ms`;
}

function sameValue(actual: unknown, expected: unknown): boolean {
  return isDeepStrictEqual(actual, expected);
}

/** The result record of an async call, as an outcome (undefined: nothing was written). */
function storedOutcome(fs: FaasSim, record: CallRecord): CallOutcome | undefined {
  const stored = resultRecordOf(fs.kvs.get(record.resultKey));
  if (stored === undefined) return undefined;
  return stored.ok ? { kind: 'result', value: decodeValue(stored.value) } : { kind: 'error', code: stored.code as ErrorCode, message: stored.message };
}

/**
 * Why an answer is wrong (undefined: it is allowed). `excuses` are the error codes that the faults
 * of the run explain for this call besides the expected answer.
 */
function judge(answer: CallOutcome, expected: Expected, excuses: ReadonlySet<string>): string | undefined {
  switch (answer.kind) {
    case 'result':
      if (!expected.ok) return `answered ${describeOutcome(answer)}, expected ${expected.code}`;
      return sameValue(answer.value, expected.value) ? undefined : `WRONG RESULT ${describeOutcome(answer)}, expected ${JSON.stringify(expected.value)}`;
    case 'error':
      if (!expected.ok && answer.code === expected.code) return undefined;
      if (excuses.has(answer.code)) return undefined;
      return `answered ${describeOutcome(answer)}, expected ${expected.ok ? `result ${JSON.stringify(expected.value)}` : expected.code}; nothing in the run explains it`;
    case 'timeout':
      return excuses.has(ErrorCode.TRANSPORT_TIMEOUT) ? undefined : 'no answer before the client deadline, and no frame of the call was lost';
    case 'accepted':
      return undefined;
  }
}

/** What the lost frames of a call excuse. */
function excusesOf(fs: FaasSim, client: FaasClient, record: CallRecord): Set<string> {
  const dropped = fs.drops.of(record.callId, client.id, record.requestId);
  const excuses = new Set<string>();
  const schedule = dropped.some((frame) => frame.body === 'schedule');
  const trigger = dropped.some((frame) => frame.body === 'trigger');
  const request = dropped.some((frame) => frame.from === client.id && frame.requestId === record.requestId);
  const answer = dropped.some((frame) => frame.to === client.id && frame.responseTo === record.requestId);
  // A lost trigger (or the schedule of an upstream function): the sink's deadline answers.
  if (schedule || trigger) excuses.add(ErrorCode.EXEC_TIMEOUT);
  // The call, the sink's schedule or the answer lost: only the client's own deadline ends it.
  if (request || schedule || answer) excuses.add(ErrorCode.TRANSPORT_TIMEOUT);
  // An async run whose every attempt lost a schedule: the scheduler gives up (its attempts at most, 3).
  if (new Set(dropped.filter((frame) => frame.body === 'schedule').map((frame) => frame.attempt)).size >= 3) excuses.add(ErrorCode.EXEC_LOST);
  // Admission: every executor stayed saturated through the client's retries (the scheduler's
  // refusal carried a retry-after hint; nothing ran).
  if (record.refusedSaturated === true) excuses.add(ErrorCode.SCHED_NO_CAPACITY);
  return excuses;
}

function checkSetup(client: FaasClient, calls = true): void {
  expect(client.setupErrors, 'registration failed').toEqual([]);
  expect(client.setupDoneAtMs, 'the setup never finished').toBeDefined();
  if (calls) expect(client.records.length, 'no planned call was sent').toBeGreaterThan(0);
}

/** What the runs of one test saw, summed over its seeds: each test asserts it exercised its faults. */
interface Tally {
  calls: number;
  rightResults: number;
  storedResults: number;
  readonly codes: Map<string, number>;
  timeouts: number;
  dropped: number;
  redispatched: number;
  executorsLost: number;
  executorsRestarted: number;
  /** Re-dispatches that found no executor with room and waited, and those that went out later. */
  retriesQueued: number;
  retriesDispatched: number;
  victimRuns: number;
}

function newTally(): Tally {
  return { calls: 0, rightResults: 0, storedResults: 0, codes: new Map(), timeouts: 0, dropped: 0, redispatched: 0, executorsLost: 0, executorsRestarted: 0, retriesQueued: 0, retriesDispatched: 0, victimRuns: 0 };
}

function count(tally: Tally, { fs, client, functions, victimRuns }: Run): void {
  tally.dropped += fs.drops.frames.length;
  tally.victimRuns += victimRuns;
  for (const id of fs.schedulerIds) {
    tally.redispatched += fs.scheduler(id)?.counters.redispatched ?? 0;
    tally.executorsLost += fs.scheduler(id)?.counters.executorsLost ?? 0;
    tally.executorsRestarted += fs.scheduler(id)?.counters.executorsRestarted ?? 0;
    tally.retriesQueued += fs.scheduler(id)?.counters.retriesQueued ?? 0;
    tally.retriesDispatched += fs.scheduler(id)?.counters.retriesDispatched ?? 0;
  }
  for (const record of client.records) {
    tally.calls++;
    const outcome = record.outcome;
    const expected = expectedOf(record.call, functions, DAGS);
    if (outcome?.kind === 'result' && expected.ok && sameValue(outcome.value, expected.value)) tally.rightResults++;
    if (outcome?.kind === 'error') tally.codes.set(outcome.code, (tally.codes.get(outcome.code) ?? 0) + 1);
    if (outcome?.kind === 'timeout') tally.timeouts++;
    const stored = record.call.async ? storedOutcome(fs, record) : undefined;
    if (stored?.kind === 'result' && expected.ok && sameValue(stored.value, expected.value)) tally.storedResults++;
  }
}

/** Whether many seeds ran (one seed from LFAAS_SEED need not show every fault). */
const manySeeds = process.env['LFAAS_SEED'] === undefined;

function failures(lines: string[]): void {
  if (lines.length > 0) throw new Error(`${lines.length} calls went wrong:\n  ${lines.slice(0, 12).join('\n  ')}`);
}

function checkClean({ fs, client, functions }: Run): void {
  checkSetup(client);
  const bad: string[] = [];
  for (const record of client.records) {
    const expected = expectedOf(record.call, functions, DAGS);
    if (record.answers.length === 0) bad.push(`${describeCall(record)}: ${describeOutcome(record.outcome)}`);
    for (const answer of record.answers) {
      const problem = judge(answer, expected, new Set());
      if (problem !== undefined) bad.push(`${describeCall(record)}: ${problem}`);
    }
    if (!record.call.async) continue;
    if (record.outcome?.kind !== 'accepted') bad.push(`${describeCall(record)}: async call not accepted: ${describeOutcome(record.outcome)}`);
    const stored = storedOutcome(fs, record);
    const problem = stored === undefined ? 'no result in the KVS' : judge(stored, expected, new Set());
    if (problem !== undefined) bad.push(`${describeCall(record)}: stored ${problem}`);
  }
  failures(bad);
}

function checkFaults({ fs, client, functions }: Run): void {
  checkSetup(client);
  const executorsLost = fs.schedulerIds.reduce((sum, id) => sum + (fs.scheduler(id)?.counters.executorsLost ?? 0), 0);
  const bad: string[] = [];
  for (const record of client.records) {
    const expected = expectedOf(record.call, functions, DAGS);
    const excuses = excusesOf(fs, client, record);
    if (executorsLost > 0) excuses.add(ErrorCode.EXEC_LOST);
    if (record.outcome === undefined || record.endedAtMs === undefined || record.endedAtMs > record.deadlineMs) {
      bad.push(`${describeCall(record)}: did not end by its deadline`);
      continue;
    }
    // The first answer (or the timeout), and every later one: none may be wrong either.
    for (const answer of record.outcome.kind === 'timeout' ? [record.outcome, ...record.answers] : record.answers) {
      const problem = judge(answer, expected, excuses);
      if (problem !== undefined) bad.push(`${describeCall(record)}: ${problem}`);
    }
    if (!record.call.async) continue;
    const callLost = fs.drops.of(record.callId, client.id, record.requestId).some((frame) => frame.from === client.id && frame.requestId === record.requestId);
    const stored = storedOutcome(fs, record);
    if (stored === undefined) {
      if (!callLost && !record.answers.some((answer) => answer.kind === 'error')) bad.push(`${describeCall(record)}: async call received by the scheduler, no result in the KVS`);
      continue;
    }
    const problem = judge(stored, expected, excuses);
    if (problem !== undefined) bad.push(`${describeCall(record)}: stored ${problem}`);
  }
  failures(bad);
}

/** Failure detection: the scheduler's timeout, its check period, a heartbeat period and the network. */
const DETECTION_MS = 600 + 100 + 100 + 20;

/**
 * crash: the victim is declared dead by the failure timeout (and may come back later); quick: it
 * restarted within the timeout and the scheduler tells by its new incarnation; noroom: it was the
 * only executor, and a restart or a new executor came well after the timeout.
 */
function checkCrash({ fs, client, functions, crashAtMs, restartAtMs, victim, joined }: Run, kind: CrashKind): void {
  checkSetup(client);
  expect(crashAtMs).toBeDefined();
  // The new boot's first heartbeat reaches the scheduler a few ms after the restart.
  const detectedByMs = kind === 'quick' ? restartAtMs! + 50 : crashAtMs! + DETECTION_MS;
  const bad: string[] = [];
  for (const record of client.records) {
    const expected = expectedOf(record.call, functions, DAGS);
    // noroom runs send every call before the scheduler can notice the crash (none is refused for
    // want of an executor at its first dispatch: that is admission control, not at-least-once).
    if (kind === 'noroom' && record.sentAtMs >= crashAtMs! + 500) bad.push(`${describeCall(record)}: sent after the crash could be noticed (crash at ${crashAtMs} ms)`);
    if (record.outcome === undefined || record.outcome.kind === 'timeout') {
      bad.push(`${describeCall(record)}: no answer by its deadline (${describeOutcome(record.outcome)})`);
      continue;
    }
    // A call that may have had a part on the dead executor: sent before the scheduler could know.
    const exposed = record.sentAtMs <= detectedByMs;
    const excuses = new Set<string>(exposed ? [ErrorCode.EXEC_LOST] : []);
    // Admission: the only executor stayed saturated through the client's retries.
    if (record.refusedSaturated === true) excuses.add(ErrorCode.SCHED_NO_CAPACITY);
    record.answers.forEach((answer, i) => {
      // After EXEC_LOST, what the run left on the survivor may still answer: its sink times out.
      const later = i > 0 && record.answers[0]!.kind === 'error' && record.answers[0]!.code === ErrorCode.EXEC_LOST ? new Set([...excuses, ErrorCode.EXEC_TIMEOUT]) : excuses;
      const problem = judge(answer, expected, later);
      if (problem !== undefined) bad.push(`${describeCall(record)}: ${problem} (crash at ${crashAtMs} ms${restartAtMs === undefined ? '' : `, restart at ${restartAtMs} ms`})`);
    });
    if (!record.call.async) continue;
    const stored = storedOutcome(fs, record);
    if (stored === undefined) {
      bad.push(`${describeCall(record)}: async call accepted, no result in the KVS (crash at ${crashAtMs} ms)`);
      continue;
    }
    // At least once: dispatched again (to a survivor, the new boot or the new executor), the
    // right result (no excuse: SCHED_NO_CAPACITY is wrong too).
    const problem = judge(stored, expected, new Set());
    if (problem !== undefined) bad.push(`${describeCall(record)}: stored ${problem} (crash at ${crashAtMs} ms${restartAtMs === undefined ? '' : `, ${joined === undefined ? 'restart' : `${joined} joined`} at ${restartAtMs} ms`})`);
  }
  failures(bad);
  const scheduler = fs.scheduler(fs.schedulerIds[0]!)!;
  const known = scheduler.executorAddresses();
  // The scheduler saw the victim go once (by its new incarnation, in quick runs; by the failure
  // timeout otherwise), and come back when it restarted.
  expect(scheduler.counters.executorsLost).toBe(1);
  expect(scheduler.counters.executorsRestarted).toBe(kind === 'quick' ? 1 : 0);
  expect(known.includes(fs.sim.address(victim!))).toBe(restartAtMs !== undefined && joined === undefined);
  if (joined !== undefined) expect(known).toContain(fs.sim.address(joined));
  // No run waited for room past its deadline.
  expect(scheduler.counters.retriesExpired).toBe(0);
}

/** A scheduler crash run (property 7). */
interface SchedulerCrashRun {
  readonly fs: FaasSim;
  readonly client: FaasClient;
  readonly functions: Map<string, SimFunction>;
  readonly victim: string;
  /** The scheduler that lived on (two-scheduler runs). */
  readonly survivor: string | undefined;
  readonly crashAtMs: number;
  readonly restartAtMs: number | undefined;
  /** Async runs in the victim's index when it crashed, and of those how many waited for room. */
  readonly pendingAtCrash: number;
  readonly waitingAtCrash: number;
}

/** Scheduler crash runs: 60 calls (three in four async) in 1 s on two executors of 4 slots each. */
const SCHEDCRASH_CALLS = 60;
const SCHEDCRASH_RUN_MS = 20_000;

/**
 * Property 7: even seeds run two schedulers (one crashes; in a third of them it restarts 4-6 s
 * later), odd seeds one (it restarts 0.1-3 s later). Loss, duplication and reordering throughout.
 */
function runSchedulerCrash(seed: number): SchedulerCrashRun {
  const sim = new Simulation({ seed, delayMs: { min: 1, max: 5 }, dropRate: 0.03, duplicateRate: 0.03, reorder: true, authenticate: true });
  const two = seed % 2 === 0;
  const functions = registry({ min: 50, max: 400 });
  const fs = buildFaasCluster(sim, { schedulers: two ? 2 : 1, executors: 2, executorCapacity: 4 }, functions);
  const workload = sim.random.fork();
  // Saturated executors refuse sync calls (SCHED_NO_CAPACITY): this client takes the refusal as
  // the answer (it would send the call again under the same call id, which the SDK does not).
  const client = fs.addClient('client', { setup: SETUP, calls: planCalls(workload, SCHEDCRASH_CALLS, 1000, 0.75), capacityRetriesMax: 0 });
  sim.add('rogue', () => rogue(sim.address('rogue'), fs.schedulerIds.map((id) => sim.address(id)), 100));
  for (let i = 0; i < 100 && client.setupDoneAtMs === undefined; i++) sim.runFor(50);
  // Mid-calls: the calls go out over the second after the setup.
  sim.runFor(200 + workload.int(700));
  const victim = fs.schedulerIds[two ? workload.int(2) : 0]!;
  const survivor = fs.schedulerIds.find((id) => id !== victim);
  const node = fs.scheduler(victim)!;
  const pendingAtCrash = node.asyncPending;
  const waitingAtCrash = node.counters.retriesQueued - node.counters.retriesDispatched - node.counters.retriesExpired;
  const crashAtMs = sim.clock.now();
  sim.crash(victim);
  let restartAtMs: number | undefined;
  if (!two || workload.chance(1 / 3)) {
    sim.runFor(two ? 4000 + workload.int(2000) : 100 + workload.int(2900));
    restartAtMs = sim.clock.now();
    sim.restart(victim);
  }
  sim.runFor(SCHEDCRASH_RUN_MS - sim.clock.now());
  expect(sim.unauthorised, "the rogue's heartbeats were refused").toBeGreaterThan(0);
  return { fs, client, functions, victim, survivor, crashAtMs, restartAtMs, pendingAtCrash, waitingAtCrash };
}

/**
 * Property 7's check: every answer right or explained (the crashed scheduler never answers what
 * it received; lost frames as in checkFaults); every async call a scheduler accepted has its right
 * result in the KVS (an async call whose acceptance was lost may have one too: then right); no
 * wrong result anywhere. A stored error is right only if expected or explained by lost frames as
 * in checkFaults (a lost trigger or schedule: EXEC_TIMEOUT), and EXEC_LOST only when the run lost
 * a schedule in at least two of its attempts (its dispatches went nowhere, its attempts ran out).
 */
function checkSchedulerCrash({ fs, client, functions, victim, crashAtMs, restartAtMs }: SchedulerCrashRun): void {
  checkSetup(client);
  const victimAddress = fs.sim.address(victim);
  const when = `(scheduler ${victim} crashed at ${crashAtMs} ms${restartAtMs === undefined ? '' : `, restarted at ${restartAtMs} ms`})`;
  const bad: string[] = [];
  for (const record of client.records) {
    const expected = expectedOf(record.call, functions, DAGS);
    const excuses = excusesOf(fs, client, record);
    // Sent to the scheduler that crashed: it may never have answered.
    if (record.scheduler === victimAddress) excuses.add(ErrorCode.TRANSPORT_TIMEOUT);
    if (record.outcome === undefined) {
      bad.push(`${describeCall(record)}: did not end by its deadline ${when}`);
      continue;
    }
    for (const answer of record.outcome.kind === 'timeout' ? [record.outcome, ...record.answers] : record.answers) {
      const problem = judge(answer, expected, excuses);
      if (problem !== undefined) bad.push(`${describeCall(record)}: ${problem} ${when}`);
    }
    if (!record.call.async) continue;
    const accepted = record.answers.some((answer) => answer.kind === 'accepted');
    const stored = storedOutcome(fs, record);
    const droppedAttempts = new Set(fs.drops.of(record.callId, client.id, record.requestId).filter((frame) => frame.body === 'schedule').map((frame) => frame.attempt));
    // What lost frames explain (a lost trigger: the sink's EXEC_TIMEOUT), as in checkFaults.
    const storeExcuses = excusesOf(fs, client, record);
    if (droppedAttempts.size >= 2) storeExcuses.add(ErrorCode.EXEC_LOST);
    if (stored === undefined) {
      if (accepted) bad.push(`${describeCall(record)}: accepted by ${record.scheduler}, no result in the KVS ${when}`);
      continue;
    }
    const problem = judge(stored, expected, storeExcuses);
    if (problem !== undefined) bad.push(`${describeCall(record)}: stored ${problem} ${when}`);
  }
  failures(bad);
}

/** forEachSeed, with this file and test named in the rerun command. */
async function seeds(name: string, count: number, firstSeed: number, body: (seed: number) => void): Promise<number> {
  try {
    return await forEachSeed(count, body, firstSeed);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(message.replace('<this file>', `${FILE} -t '${name}'`), { cause: error });
  }
}

describe('FaaS simulation', () => {
  it('answers every call and DAG call exactly without faults', async () => {
    const tally = newTally();
    await seeds('without faults', seedCount(50), 1, (seed) => {
      const outcome = run(seed, 'clean');
      checkClean(outcome);
      count(tally, outcome);
    });
    if (!manySeeds) return;
    // Every kind of answer showed up: results, user errors, timeouts, async results.
    expect(tally.rightResults).toBeGreaterThan(tally.calls / 2);
    expect(tally.storedResults).toBeGreaterThan(tally.calls / 10);
    expect(tally.codes.get(ErrorCode.EXEC_USER_ERROR) ?? 0).toBeGreaterThan(0);
    expect(tally.codes.get(ErrorCode.EXEC_TIMEOUT) ?? 0).toBeGreaterThan(0);
  }, seedCount(50) * 1000);

  it('ends every call with the right result or an explained typed error under loss, duplication and reordering', async () => {
    const tally = newTally();
    await seeds('under loss', seedCount(100), 1000, (seed) => {
      const outcome = run(seed, 'faults');
      checkFaults(outcome);
      count(tally, outcome);
    });
    if (!manySeeds) return;
    // The faults happened and were survived: frames lost, runs dispatched again, most calls right.
    expect(tally.dropped).toBeGreaterThan(tally.calls / 10);
    expect(tally.redispatched).toBeGreaterThan(0);
    expect(tally.timeouts).toBeGreaterThan(0);
    expect(tally.rightResults).toBeGreaterThan(tally.calls / 3);
  }, seedCount(100) * 1000);

  it('answers or fails EXEC_LOST every sync call of a crashed executor, and runs every async call to its right result', async () => {
    const tally = newTally();
    await seeds('crashed', seedCount(60), 5000, (seed) => {
      const outcome = run(seed, 'crash');
      checkCrash(outcome, 'crash');
      count(tally, outcome);
    });
    if (!manySeeds) return;
    // The crashes hit executors in the middle of runs.
    expect(tally.victimRuns).toBeGreaterThan(tally.calls / 50);
    expect(tally.executorsLost).toBeGreaterThan(0);
    expect(tally.codes.get(ErrorCode.EXEC_LOST) ?? 0).toBeGreaterThan(0);
    expect(tally.redispatched).toBeGreaterThan(0);
    expect(tally.storedResults).toBeGreaterThan(tally.calls / 10);
  }, seedCount(60) * 1000);

  it('tells an executor restarted within the failure timeout by its incarnation: sync calls end with their result or EXEC_LOST, async calls all complete', async () => {
    const tally = newTally();
    await seeds('restarted quickly', seedCount(60), 7000, (seed) => {
      const outcome = run(seed, 'quick');
      checkCrash(outcome, 'quick');
      count(tally, outcome);
    });
    if (!manySeeds) return;
    // The restarts hit runs, and were told by the incarnation (checkCrash: not by the timeout).
    expect(tally.victimRuns).toBeGreaterThan(tally.calls / 50);
    expect(tally.executorsRestarted).toBeGreaterThan(0);
    expect(tally.codes.get(ErrorCode.EXEC_LOST) ?? 0).toBeGreaterThan(0);
    expect(tally.redispatched).toBeGreaterThan(0);
    expect(tally.storedResults).toBeGreaterThan(tally.calls / 10);
  }, seedCount(60) * 1000);

  it('keeps async re-dispatches that find no executor waiting until one has room: every async call completes with its right result', async () => {
    const tally = newTally();
    await seeds('no room', seedCount(60), 9000, (seed) => {
      const outcome = run(seed, 'noroom');
      checkCrash(outcome, 'noroom');
      count(tally, outcome);
    });
    if (!manySeeds) return;
    // Re-dispatches found no executor, waited, and went out once one was back.
    expect(tally.victimRuns).toBeGreaterThan(tally.calls / 50);
    expect(tally.retriesQueued).toBeGreaterThan(0);
    expect(tally.retriesDispatched).toBe(tally.retriesQueued);
    expect(tally.storedResults).toBeGreaterThan(tally.calls / 3);
  }, seedCount(60) * 1000);

  it('runs every async call a crashed scheduler accepted to its right result: its restarted boot or a surviving scheduler takes them over', async () => {
    const tally = { calls: 0, accepted: 0, storedRight: 0, pendingAtCrash: 0, waitingAtCrash: 0, takenOverBySurvivor: 0, takenOverByRestart: 0, claimsLost: 0, restarts: 0, survivors: 0 };
    await seeds('scheduler crashed', seedCount(80), 11_000, (seed) => {
      const outcome = runSchedulerCrash(seed);
      checkSchedulerCrash(outcome);
      const { fs, client, functions, victim, survivor, restartAtMs, pendingAtCrash, waitingAtCrash } = outcome;
      tally.calls += client.records.length;
      tally.pendingAtCrash += pendingAtCrash;
      tally.waitingAtCrash += waitingAtCrash;
      if (restartAtMs !== undefined) tally.restarts++;
      if (survivor !== undefined) {
        tally.survivors++;
        tally.takenOverBySurvivor += fs.scheduler(survivor)!.counters.takenOver;
      }
      tally.takenOverByRestart += fs.scheduler(victim)?.counters.takenOver ?? 0;
      for (const id of fs.schedulerIds) tally.claimsLost += fs.scheduler(id)?.counters.claimsLost ?? 0;
      for (const record of client.records) {
        if (!record.call.async || !record.answers.some((answer) => answer.kind === 'accepted')) continue;
        tally.accepted++;
        const expected = expectedOf(record.call, functions, DAGS);
        const stored = storedOutcome(fs, record);
        if (stored?.kind === 'result' && expected.ok && sameValue(stored.value, expected.value)) tally.storedRight++;
      }
    });
    if (!manySeeds) return;
    // The crashes hit async calls in flight and waiting for room; both a restarted boot and a
    // surviving scheduler took runs over; most accepted calls have their value (the rest: expected
    // user errors and timeouts).
    expect(tally.restarts).toBeGreaterThan(0);
    expect(tally.survivors).toBeGreaterThan(0);
    expect(tally.pendingAtCrash).toBeGreaterThan(tally.calls / 20);
    expect(tally.waitingAtCrash).toBeGreaterThan(0);
    expect(tally.takenOverBySurvivor).toBeGreaterThan(0);
    expect(tally.takenOverByRestart).toBeGreaterThan(0);
    expect(tally.storedRight).toBeGreaterThan(tally.accepted / 2);
  }, seedCount(80) * 2000);

  it('keeps a re-dispatch that no executor takes waiting until its deadline, then writes SCHED_NO_CAPACITY', () => {
    const sim = new Simulation({ seed: 11 });
    const fs = buildFaasCluster(sim, { schedulers: 1, executors: 1 }, registry({ min: 1, max: 5 }));
    // Runs 5-6 s, longer than the whole wait: in flight when its only executor dies.
    const call: ClientCall = { kind: 'call', fn: 'slow', args: [7], timeoutMs: 2000, async: true };
    const client = fs.addClient('client', { setup: SETUP, calls: [{ atMs: 0, call }] });
    for (let i = 0; i < 100 && client.records.length === 0; i++) sim.runFor(10);
    checkSetup(client);
    const record = client.records[0]!;
    sim.runFor(200);
    expect(fs.executor(executorName(0))?.runCount).toBe(1);
    sim.crash(executorName(0));
    const scheduler = fs.scheduler(fs.schedulerIds[0]!)!;
    // Its deadline: its timeout after acceptance (a few ms after it was sent), plus the 5 s grace.
    const deadlineMs = record.sentAtMs + call.timeoutMs + 5000;
    sim.runFor(deadlineMs - 100 - sim.clock.now());
    expect(record.outcome?.kind).toBe('accepted');
    expect(scheduler.counters.executorsLost).toBe(1);
    expect(scheduler.counters.retriesQueued).toBe(1);
    // Still pending: no result yet, the run waits for an executor.
    expect(fs.kvs.get(record.resultKey)).toBeUndefined();
    expect(scheduler.runCount).toBe(1);
    sim.runFor(400);
    const stored = storedOutcome(fs, record);
    expect(stored?.kind === 'error' ? stored.code : stored).toBe(ErrorCode.SCHED_NO_CAPACITY);
    expect(scheduler.counters.retriesExpired).toBe(1);
    expect(scheduler.counters.retriesDispatched).toBe(0);
    expect(scheduler.runCount).toBe(0);
  });

  it('keeps an accepted async call that finds no executor at all waiting until one joins, then runs it', () => {
    const sim = new Simulation({ seed: 12 });
    const fs = buildFaasCluster(sim, { schedulers: 1, executors: 0 }, registry({ min: 1, max: 5 }));
    const call: ClientCall = { kind: 'call', fn: 'inc', args: [41], timeoutMs: 5000, async: true };
    const client = fs.addClient('client', { setup: SETUP, calls: [{ atMs: 0, call }] });
    for (let i = 0; i < 100 && client.records.length === 0; i++) sim.runFor(10);
    checkSetup(client);
    const record = client.records[0]!;
    sim.runFor(1000);
    const scheduler = fs.scheduler(fs.schedulerIds[0]!)!;
    // Accepted (recorded in the KVS), and waiting: no executor has joined, so no result yet.
    expect(record.outcome?.kind).toBe('accepted');
    expect(fs.kvs.get(record.resultKey)).toBeUndefined();
    expect(scheduler.runCount).toBe(1);
    fs.addExecutor('late');
    sim.runFor(1000);
    expect(storedOutcome(fs, record)).toEqual({ kind: 'result', value: 42 });
    expect(scheduler.counters.retriesExpired).toBe(0);
  });

  it('lets a re-dispatch replace the earlier attempt on an executor, keeping the parents\' results that arrived', () => {
    // The race the crash runs rarely hit: attempt 1 of an async linear DAG waits on exec0 for the
    // trigger of an executor that died; attempt 2's upstream triggers exec0 before attempt 2's
    // schedule arrives there (so the old run takes the trigger). exec0 must run attempt 2 with it.
    const sim = new Simulation({ seed: 3 });
    const fs = buildFaasCluster(sim, { schedulers: 1, executors: 2 }, registry({ min: 1, max: 5 }));
    const client = fs.addClient('client', { setup: SETUP, calls: [] });
    sim.runFor(1000);
    checkSetup(client, false);
    const exec0 = sim.address(executorName(0));
    const schedule = (attempt: number, upstream: string) =>
      envelopeWith(
        {
          schedule: {
            runId: 'redispatched',
            dag: 'linear',
            functions: [
              { name: 'inc', version: 1, executor: upstream, args: [{ value: encodeValue(4) }], successors: ['double'] },
              { name: 'double', version: 1, executor: exec0, successors: ['square'], parents: 1, parentNames: ['inc'] },
              { name: 'square', version: 1, executor: exec0, parents: 1, parentNames: ['double'] },
            ],
            resultKey: 'lfaas/result/redispatched',
            timeoutMs: 3000,
            scheduler: sim.address('sched0'),
            dispatchSeq: 1000 + attempt,
            attempt,
          },
        },
        { sender: sim.address('sched0') },
      );
    sim.deliver(executorName(0), { kind: 'message', envelope: schedule(1, 'mem://dead-executor') });
    sim.runFor(50);
    sim.deliver(executorName(0), { kind: 'message', envelope: envelopeWith({ trigger: { runId: 'redispatched', sourceFunction: 'inc', targetFunction: 'double', value: encodeValue(5) } }, { sender: sim.address(executorName(1)) }) });
    sim.runFor(1);
    // exec1 runs attempt 2's inc in the story; here its trigger above is all exec0 gets of it.
    sim.deliver(executorName(0), { kind: 'message', envelope: schedule(2, sim.address(executorName(1))) });
    sim.runFor(5000);
    const stored = resultRecordOf(fs.kvs.get('lfaas/result/redispatched'));
    expect(stored?.ok ? decodeValue(stored.value) : stored).toBe(100);
    // Written by attempt 2: the old attempt's run was replaced, not finished.
    expect((fs.kvs.data.get('lfaas/result/redispatched') as Priority | undefined)?.priority).toBe(2);
  });

  it('is deterministic: one seed, one trace', () => {
    for (const kind of ['faults', 'crash', 'quick', 'noroom'] as const) {
      const first = run(77, kind);
      const second = run(77, kind);
      expect(first.fs.sim.steps).toBeGreaterThan(1000);
      expect(second.fs.sim.trace).toBe(first.fs.sim.trace);
      expect(second.client.records.map((record) => describeOutcome(record.outcome))).toEqual(first.client.records.map((record) => describeOutcome(record.outcome)));
    }
    for (const seed of [76, 77]) {
      const first = runSchedulerCrash(seed);
      const second = runSchedulerCrash(seed);
      expect(first.fs.sim.steps).toBeGreaterThan(1000);
      expect(second.fs.sim.trace).toBe(first.fs.sim.trace);
      expect(second.client.records.map((record) => describeOutcome(record.outcome))).toEqual(first.client.records.map((record) => describeOutcome(record.outcome)));
    }
  });
});
