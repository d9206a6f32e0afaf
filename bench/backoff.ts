/**
 * `backoff` (McGrath and Brenner's backoff test, ICDCSW 2017): one call of a function after an
 * idle gap of increasing length (1 to 30 minutes), its latency, and whether it was cold: when
 * does the platform expire the warm runtime? Both keep-alive policies in the same run, each on
 * its own lane (bench/lanes.ts: one storage node shared; per lane a scheduler with
 * --pin-executors 0 and an executor of its own), concurrently, their calls interleaved:
 * - `fixed`: the runtime stays loaded `keepAliveMs` (15 minutes) after each call;
 * - `adaptive`: Shahrad et al.'s hybrid histogram (executor/keepalive-policy.ts), which needs 10
 *   idle times before it leaves its fallback (keep 4 hours).
 *
 * Time is scaled: the executors run with --keep-alive-time-scale N (`--time-scale N`, default
 * 60: a minute lasts a second, the 15-minute window 15 s, an adaptive bin 1 s). Every function
 * (its own owner, so its own sandbox process) is trained first with 12 calls at a regular gap
 * (5.5 minutes, the middle of a histogram bin; 2.5 with --quick), the same for both policies, then makes ONE probe call after its
 * gap, measured from the last training call: one function per (policy, gap, repeat), a wave per
 * repeat, the functions of a wave running at once on a staggered schedule, so each probe sees the
 * policy in the state the training left it (a probe's own idle time would otherwise teach the
 * adaptive policy the test's gaps). On a lane one call runs at a time, with the executor's
 * counters read around it (cold: the pool's cold-start counter moved).
 */
import { HybridHistogramKeepAlive } from '../executor/index.js';
import type { FunctionHandle } from '../client/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { metricsDelta, startLanes } from './lanes.js';
import type { Lane } from './lanes.js';

const MINUTE = 60_000;
const COLD = 'lfaas_executor_pool_cold_starts_total';
const WARM = 'lfaas_executor_pool_warm_starts_total';
const SPAWNED = 'lfaas_executor_pool_runtimes_started_total';
const PREWARMED = 'lfaas_executor_pool_prewarmed_total';
const UNLOADED = 'lfaas_executor_pool_unloaded_total';
const WARM_FUNCTIONS = 'lfaas_executor_warm_functions';
const WORKERS = 'lfaas_executor_pool_workers';
const COUNTERS = [COLD, WARM, SPAWNED, PREWARMED, UNLOADED];
const TRAINING_CALLS = 12;
/**
 * The schedulers' --executor-timeout-ms (1000 by default): on 2 cores shared with other work, an
 * executor starting dozens of sandbox processes (the adaptive lane's prepares) was once silent
 * for over a second and its call answered EXEC_LOST.
 */
const EXECUTOR_TIMEOUT_MS = 5000;
/**
 * The scheduler learns call chains (scheduler/call-chains.ts): when one caller's next call, within
 * 1 s, is usually of `g` after `f`, a call of `f` prepares `g`. A lane's one client calls its
 * functions in the same staggered order every round, so without a decoy each function is learnt as
 * its predecessor's successor, and a probe's call prepared the next gap's function (seen: fixed
 * 15-minute functions warm at 20, 25 and 30 minutes). With a warm decoy called right after every
 * measured call, every function's successor is the decoy (warm: nothing is prepared) and the
 * decoy's successors are too many for any to count. The decoy has a concurrency limit, so its
 * calls earn no direct lease: every one goes through the scheduler, which sees it (a leased call
 * would not be, and the measured function would stay the caller's previous call).
 */
const DECOY_CONCURRENCY = 1000;
const FIXED_KEEP_ALIVE_MIN = 15;
const FIXED_COLOUR = '#4c78a8';
const ADAPTIVE_COLOUR = '#f58518';

type Policy = 'fixed' | 'adaptive';

interface Sample {
  readonly policy: Policy;
  readonly phase: 'training' | 'probe';
  /** 1..12 for training calls, 13 for the probe. */
  readonly call: number;
  readonly gapMin: number;
  readonly repeat: number;
  /** The idle gap before this call as the client measured it (send to send), in unscaled minutes. */
  readonly actualGapMin: number;
  readonly ms: number;
  readonly cold: number;
  readonly spawned: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** `--time-scale N` or `--time-scale=N` (default 60). */
function timeScaleOf(args: readonly string[]): number {
  let raw: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--time-scale') raw = args[i + 1];
    else if (arg.startsWith('--time-scale=')) raw = arg.slice('--time-scale='.length);
  }
  if (raw === undefined) return 60;
  const scale = Number(raw);
  if (!Number.isInteger(scale) || scale < 1 || scale > 3600) throw new Error(`--time-scale: an integer from 1 to 3600, not ${JSON.stringify(raw)}`);
  return scale;
}

/** One call at a time per lane: the counters read around a call are that call's. */
class LaneGate {
  private tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

interface Probe {
  readonly policy: Policy;
  readonly lane: Lane;
  readonly gate: LaneGate;
  readonly fn: FunctionHandle<(x: number) => number>;
  readonly gapMin: number;
  readonly repeat: number;
  readonly startAt: number;
  /** Send times (performance.now()) of its training calls. */
  readonly sends: number[];
}

function shareOf(samples: readonly Sample[], cold: boolean): number {
  return samples.length === 0 ? Number.NaN : samples.filter((sample) => (sample.cold > 0) === cold).length / samples.length;
}

function median(values: readonly number[]): number {
  return summarise(values).p50Ms;
}

export const backoffBenchmark: Benchmark = async (options) => {
  const timeScale = timeScaleOf(options.args);
  const minuteMs = MINUTE / timeScale;
  // In the middle of a histogram bin (bins are [n, n+1) minutes): at a whole number of minutes the
  // jitter of a call's arrival puts some training idle times in the bin below (seen at 2: the first
  // idle, shortened by the cold first call's code fetch, fell in bin 1 and halved the prewarm window).
  const trainingGapMin = options.quick ? 2.5 : 5.5;
  const gaps = options.quick ? [1, 2.5, 3, 5, 10, 14, 16] : [1, 2, 3, 4, 5, 5.5, 6, 7, 8, 10, 12, 14, 16, 20, 25, 30];
  const repeats = options.quick ? 1 : 3;
  const policies: Policy[] = ['fixed', 'adaptive'];
  const perLane = gaps.length * repeats;
  // A wave's functions and what the previous wave left loaded (a fixed window outlasts its probe), and a few stems.
  const workers = Math.min(256, 2 * gaps.length + 8);
  const laneFlags = ['--keep-alive-time-scale', String(timeScale), '--metrics-port', '0', '--stem-target-max', '4'];
  const started = await startLanes(
    policies.map((policy) => ({ name: policy, executorArgs: laneFlags })),
    // Every function is its own owner (its own sandbox process while warm).
    { workers, schedulerArgs: ['--pin-executors', '0', '--executor-timeout-ms', String(EXECUTOR_TIMEOUT_MS)] },
  );
  const lanes = new Map(policies.map((policy, i) => [policy, started.lanes[i]!] as const));
  const gates = new Map(policies.map((policy) => [policy, new LaneGate()] as const));
  const samples: Sample[] = [];
  const failures: { policy: Policy; phase: Sample['phase']; call: number; gapMin: number; message: string }[] = [];
  const loadSamples: { policy: Policy; warmFunctions: number; workers: number }[] = [];
  let totals: Record<Policy, Record<string, number>>;
  const runStartedAt = performance.now();
  try {
    const code = 'module.exports = (x) => x;';
    const periodMs = trainingGapMin * minuteMs;
    /** A wave's functions (one repeat: every gap, both policies), trained on a staggered schedule. */
    const registerWave = async (repeat: number): Promise<Probe[]> => {
      const wave: Probe[] = [];
      for (const gapMin of gaps) {
        for (const policy of policies) {
          const lane = lanes.get(policy)!;
          const fn = await lane.faas.register<(x: number) => number, string>(`bk-${policy}-g${gapMin}-r${repeat}`, { code }, policy === 'fixed' ? { keepAlive: 'fixed', keepAliveMs: FIXED_KEEP_ALIVE_MIN * MINUTE, timeoutMs: 10_000 } : { keepAlive: 'adaptive', timeoutMs: 10_000 });
          wave.push({ policy, lane, gate: gates.get(policy)!, fn, gapMin, repeat, startAt: 0, sends: [] });
        }
      }
      // Staggered over one training period, the policies interleaved.
      const start = performance.now() + 300;
      return wave.map((probe, i) => ({ ...probe, startAt: start + (i * periodMs) / wave.length }));
    };
    // The lane's client calls the decoy after every measured call (see DECOY_CONCURRENCY).
    const decoys = new Map(await Promise.all(policies.map(async (policy) => [policy, await lanes.get(policy)!.faas.register<(x: number) => number, string>(`bk-decoy-${policy}`, { code }, { keepAlive: 'fixed', keepAliveMs: 4 * 60 * MINUTE, timeoutMs: 10_000, concurrency: DECOY_CONCURRENCY })] as const)));
    for (const [policy, decoy] of decoys) await lanes.get(policy)!.faas.call(decoy, [0]);
    const staggered: Probe[] = [];
    const before = new Map(await Promise.all(policies.map(async (policy) => [policy, await lanes.get(policy)!.metrics()] as const)));

    /** One call measured on its lane, alone there: its latency and what the pool's counters did. */
    const measured = (probe: Probe, phase: Sample['phase'], call: number, previousSend: number | undefined): Promise<number> =>
      probe.gate.run(async () => {
        let sentAt = performance.now();
        let ms: number;
        let delta: Record<string, number>;
        try {
          const pre = await probe.lane.metrics();
          sentAt = performance.now();
          await probe.lane.faas.call(probe.fn, [call]);
          ms = performance.now() - sentAt;
          delta = metricsDelta(await probe.lane.metrics(), pre, [COLD, SPAWNED]);
        } catch (error) {
          // Counted and shown, not measured; the function's schedule goes on.
          failures.push({ policy: probe.policy, phase, call, gapMin: phase === 'probe' ? probe.gapMin : trainingGapMin, message: `${String((error as { code?: string }).code ?? 'error')}: ${String((error as Error).message).slice(0, 200)}` });
          return sentAt;
        } finally {
          // The decoy right after every measured call (see DECOY_CONCURRENCY), not measured.
          await probe.lane.faas.call(decoys.get(probe.policy)!, [0]).catch(() => undefined);
        }
        samples.push({
          policy: probe.policy,
          phase,
          call,
          gapMin: phase === 'probe' ? probe.gapMin : trainingGapMin,
          repeat: probe.repeat,
          actualGapMin: previousSend === undefined ? 0 : (sentAt - previousSend) / minuteMs,
          ms,
          cold: delta[COLD] ?? 0,
          spawned: delta[SPAWNED] ?? 0,
        });
        return sentAt;
      });

    // The lanes' loaded functions and runtimes, twice a second (what the policies keep in memory).
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const policy of policies) {
          const series = await lanes.get(policy)!.metrics().catch(() => undefined);
          if (series !== undefined) loadSamples.push({ policy, warmFunctions: series.get(WARM_FUNCTIONS) ?? 0, workers: series.get(WORKERS) ?? 0 });
        }
        await sleep(500);
      }
    })();

    // One wave per repeat, one after the other: all of them at once (every gap x 3 repeats x 2
    // policies, ~100 functions) started dozens of sandbox processes within a few seconds at each
    // prewarm window and delayed both lanes' calls by seconds on 2 cores shared with other work.
    for (let repeat = 0; repeat < repeats; repeat++) {
      const wave = await registerWave(repeat);
      staggered.push(...wave);
      await Promise.all(
        wave.map(async (probe) => {
          let last: number | undefined;
          for (let call = 1; call <= TRAINING_CALLS; call++) {
            await sleep((last === undefined ? probe.startAt : last + periodMs) - performance.now());
            const sent = await measured(probe, 'training', call, last);
            probe.sends.push(sent);
            last = sent;
          }
          await sleep(last! + probe.gapMin * minuteMs - performance.now());
          await measured(probe, 'probe', TRAINING_CALLS + 1, last);
        }),
      );
    }
    sampling = false;
    await sampler;
    const after = new Map(await Promise.all(policies.map(async (policy) => [policy, await lanes.get(policy)!.metrics()] as const)));
    totals = Object.fromEntries(policies.map((policy) => [policy, metricsDelta(after.get(policy)!, before.get(policy)!, COUNTERS)])) as Record<Policy, Record<string, number>>;

    // The windows the adaptive policy learns from the training gaps as the client measured them
    // (the executor measures arrival to arrival; its windows are not exported).
    const learnt = new Map<string, number>();
    for (const probe of staggered.filter((candidate) => candidate.policy === 'adaptive')) {
      const policy = new HybridHistogramKeepAlive();
      for (let i = 1; i < probe.sends.length; i++) policy.recordIdle((probe.sends[i]! - probe.sends[i - 1]!) * timeScale);
      const windows = policy.windows();
      const key = `${Math.round((100 * windows.prewarmMs) / MINUTE) / 100}-${Math.round((100 * (windows.prewarmMs + windows.keepAliveMs)) / MINUTE) / 100}`;
      learnt.set(key, (learnt.get(key) ?? 0) + 1);
    }
    const [learntKey] = [...learnt].sort((a, b) => b[1] - a[1])[0] ?? ['0-0'];
    const [prewarmMin, windowEndMin] = learntKey.split('-').map(Number) as [number, number];

    // Rows: per policy, the training calls in three groups, then one row per probe gap.
    const rows: Row[] = [];
    const row = (policy: Policy, phase: Sample['phase'], gapMin: number, callsOf: (call: number) => boolean, calls: string): Row => {
      const group = samples.filter((sample) => sample.policy === policy && sample.phase === phase && sample.gapMin === gapMin && callsOf(sample.call));
      const failed = failures.filter((failure) => failure.policy === policy && failure.phase === phase && failure.gapMin === gapMin && callsOf(failure.call));
      const latency = summarise(group.map((sample) => sample.ms));
      const coldCalls = group.filter((sample) => sample.cold > 0).length;
      return {
        policy,
        phase,
        calls,
        gapMin,
        actualGapMin: median(group.map((sample) => sample.actualGapMin)),
        maxGapMin: Math.max(0, ...group.map((sample) => sample.actualGapMin)),
        n: group.length,
        failed: failed.length,
        cold: coldCalls,
        state: coldCalls === 0 ? 'warm' : coldCalls === group.length ? 'cold' : 'mixed',
        p50Ms: latency.p50Ms,
        minMs: latency.minMs,
        maxMs: latency.maxMs,
        runtimesStartedPerCall: group.reduce((sum, sample) => sum + sample.spawned, 0) / Math.max(1, group.length),
      };
    };
    for (const policy of policies) {
      rows.push(row(policy, 'training', trainingGapMin, (call) => call === 1, 'call 1 (first)'));
      rows.push(row(policy, 'training', trainingGapMin, (call) => call >= 2 && call <= 11, 'calls 2-11'));
      rows.push(row(policy, 'training', trainingGapMin, (call) => call === 12, 'call 12'));
    }
    for (const policy of policies) {
      for (const gapMin of gaps) rows.push(row(policy, 'probe', gapMin, () => true, 'probe (13th call)'));
    }

    // Ratios and checks.
    const probesOf = (policy: Policy): Sample[] => samples.filter((sample) => sample.policy === policy && sample.phase === 'probe');
    const atGap = (policy: Policy, gapMin: number): Sample[] => probesOf(policy).filter((sample) => sample.gapMin === gapMin);
    const majorityCold = (policy: Policy, gapMin: number): boolean => shareOf(atGap(policy, gapMin), true) > 0.5;
    const firstColdGap = (policy: Policy, fromMin = 0): number => gaps.find((gapMin) => gapMin > fromMin && majorityCold(policy, gapMin)) ?? Number.NaN;
    const ratios: Record<string, number> = { time_scale: timeScale, training_gap_min: trainingGapMin };
    for (const policy of policies) {
      const probes = probesOf(policy);
      const coldMs = probes.filter((sample) => sample.cold > 0).map((sample) => sample.ms);
      const warmMs = samples.filter((sample) => sample.policy === policy && sample.cold === 0 && sample.call > 1).map((sample) => sample.ms);
      if (coldMs.length > 0 && warmMs.length > 0) ratios[`${policy}_cold_over_warm_p50`] = median(coldMs) / median(warmMs);
      ratios[`${policy}_cold_call_p50_ms`] = coldMs.length > 0 ? median(coldMs) : Number.NaN;
      ratios[`${policy}_warm_call_p50_ms`] = median(warmMs);
      ratios[`${policy}_first_cold_gap_min`] = firstColdGap(policy);
      ratios[`${policy}_mean_functions_loaded`] = loadSamples.filter((sample) => sample.policy === policy).reduce((sum, sample) => sum + sample.warmFunctions, 0) / Math.max(1, loadSamples.filter((sample) => sample.policy === policy).length);
      ratios[`${policy}_mean_runtimes`] = loadSamples.filter((sample) => sample.policy === policy).reduce((sum, sample) => sum + sample.workers, 0) / Math.max(1, loadSamples.filter((sample) => sample.policy === policy).length);
      for (const counter of [PREWARMED, UNLOADED, SPAWNED]) ratios[`${policy}_lane_${counter.replace('lfaas_executor_pool_', '')}`] = totals[policy][counter] ?? 0;
    }
    ratios['fixed_first_cold_gap_after_14_min'] = firstColdGap('fixed', 14);
    ratios['adaptive_first_cold_gap_after_trained_gap_min'] = firstColdGap('adaptive', trainingGapMin);
    ratios['adaptive_learnt_prewarm_min'] = prewarmMin;
    ratios['adaptive_learnt_window_end_min'] = windowEndMin;
    ratios['adaptive_over_fixed_mean_functions_loaded'] = ratios['adaptive_mean_functions_loaded']! / ratios['fixed_mean_functions_loaded']!;
    const warmShare = (policy: Policy, gapMin: number): number => shareOf(atGap(policy, gapMin), false);
    const coldShare = (policy: Policy, gapMin: number): number => shareOf(atGap(policy, gapMin), true);
    const targets: Target[] = [
      { name: 'check: fixed (15 min) warm at 14 min (share of probes warm)', target: '= 1', value: warmShare('fixed', 14), met: warmShare('fixed', 14) === 1 },
      { name: 'check: fixed (15 min) cold at 16 min (share of probes cold)', target: '= 1', value: coldShare('fixed', 16), met: coldShare('fixed', 16) === 1 },
      { name: `check: adaptive warm at the trained gap, ${trainingGapMin} min (prepared again before the call)`, target: '= 1', value: warmShare('adaptive', trainingGapMin), met: warmShare('adaptive', trainingGapMin) === 1 },
      { name: 'check: adaptive cold at 1 min (unloaded after the call, before its prewarm window)', target: '= 1', value: coldShare('adaptive', 1), met: coldShare('adaptive', 1) === 1 },
    ];
    const runSeconds = (performance.now() - runStartedAt) / 1000;
    const notes = [
      `time scaled by ${timeScale} (--time-scale; executors run with --keep-alive-time-scale ${timeScale}): a minute lasts ${minuteMs} ms; every gap and window here is in unscaled minutes; the run took ${Math.round(runSeconds)} s`,
      `lanes (bench/lanes.ts): one storage node (1 shard) shared; per policy a scheduler (--pin-executors 0: registration prepares nothing; --executor-timeout-ms ${EXECUTOR_TIMEOUT_MS}) and an executor (--workers ${workers} --stem-target-max 4 --keep-alive-time-scale ${timeScale}) at isolation ${started.isolation}; both lanes run at once, their calls interleaved; all on 127.0.0.1 sharing the 2 cores with the client`,
      `the schedulers run with --executor-timeout-ms ${EXECUTOR_TIMEOUT_MS} (default 1000): in a first full run on the shared machine an executor was silent over a second while starting sandbox processes and a call was answered EXEC_LOST; failed calls are counted (failed) and left out of the latencies: ${failures.length === 0 ? 'none this run' : `${failures.length} this run, first: ${failures.slice(0, 3).map((failure) => `${failure.policy} ${failure.phase} call ${failure.call} (gap ${failure.gapMin}): ${failure.message}`).join(' | ')}`}`,
      `call chains: the scheduler prepares the function a caller usually calls next (scheduler/call-chains.ts: the caller's next call within 1 s, in at least half of the cases); each lane's one client calls its functions in the same staggered order every round, so each would be learnt as its predecessor's successor and a probe would prepare the next gap's function (it did, in a run before the decoy: the fixed 15-minute functions were warm at 20, 25 and 30 minutes); so right after every measured call the client calls a warm decoy function of its lane (not measured; registered with a concurrency limit, so that its calls earn no direct lease and all go through the scheduler, which must see them): every function's successor is then the decoy, which is warm, and nothing is prepared`,
      `per (policy, gap, repeat) a function of its own (its own owner: its own sandbox process while loaded), no-op, ${perLane} per policy; ${repeats} repeat(s) per gap; registered with keepAlive fixed (keepAliveMs ${FIXED_KEEP_ALIVE_MIN} min) or adaptive`,
      `training: ${TRAINING_CALLS} calls at a regular gap of ${trainingGapMin} min (each sent ${trainingGapMin} min after the previous one was sent, later if its lane was busy), the same for both policies; ${trainingGapMin} rather than ${Math.floor(trainingGapMin)}: the middle of a 1-minute histogram bin (in a trial at exactly 2 min the first idle time, shortened by the cold first call's code fetch, fell in the bin below and halved the prewarm window); the adaptive policy has 10 idle times at the 11th call and leaves its fallback (keep 4 hours) then: from the training gaps the policy computes a prewarm window of ${prewarmMin} min and a keep-alive to ${windowEndMin} min after a call (the 5th and 99th percentiles of its 1-minute-bin histogram with 10% margins; replayed from the gaps the client measured, ${[...learnt].map(([key, n]) => `${n} function(s): ${key.replace('-', ' to ')} min`).join(', ')}), so after each call it unloads the function and prepares it again ${prewarmMin} min later`,
      `probe: one call per function, its gap after the 12th training call (actualGapMin: as measured, send to send; maxGapMin: the longest); a wave per repeat (${repeats} wave(s), one after the other), the functions of a wave (every gap, both policies: ${gaps.length * policies.length}) at once, staggered over one training period, so that every probe finds its policy as the training left it (one function probed at every gap in turn, as McGrath and Brenner did, would teach the adaptive policy the test's own gaps); a first full run with all ${perLane * policies.length} functions at once, on the 2 cores shared with other work (load average ~5), started dozens of sandbox processes within seconds at each prewarm window and delayed both lanes' calls by up to seconds (some training gaps came out at 10 minutes instead of 5.5, and the adaptive policy learnt wider windows)`,
      'cold: the pool\'s cold-start counter moved during the call (one call at a time per lane, the lane\'s executor counters read around it); runtimesStartedPerCall: sandbox processes started during the call (0 when a waiting stem or the owner\'s own process served it); latency is the client\'s, end to end, through the scheduler (a client\'s 1 s direct lease has run out at every gap of 1 minute or more, give or take the call itself at 1 minute and scale 60)',
      `keep-alive expiry is checked by the pool's sweep once a second (real time): at scale ${timeScale} a window ends up to ${(timeScale / 60).toFixed(2).replace(/\.00$/, '')} minute(s) late, so a probe just past a window's end may still find the function loaded`,
      `lane totals over the run: fixed ${JSON.stringify(totals.fixed)}; adaptive ${JSON.stringify(totals.adaptive)} (prewarmed: functions prepared again by the adaptive policy's prewarm window; unloaded: realms dropped, after a call with a prewarm window ahead or at the end of a keep-alive)`,
      `loaded functions (lfaas_executor_warm_functions, sampled twice a second over the whole run, training included): fixed ${ratios['fixed_mean_functions_loaded']!.toFixed(1)}, adaptive ${ratios['adaptive_mean_functions_loaded']!.toFixed(1)} on average, of ${perLane} functions per lane; runtimes (processes, stems included): fixed ${ratios['fixed_mean_runtimes']!.toFixed(1)}, adaptive ${ratios['adaptive_mean_runtimes']!.toFixed(1)}`,
      'McGrath and Brenner (ICDCSW 2017, "Serverless Computing: Design, Implementation, and Performance"): a prototype in .NET on Microsoft Azure with Windows containers as execution environments, measured against AWS Lambda, Azure Functions, Google Cloud Functions and IBM\'s deployment of Apache OpenWhisk; their abstract reports that they "examine the scaling and instance expiration trends in the implementations" (the backoff test is that examination). The per-platform figures of their backoff plot (the idle time at which each platform went cold, and the latencies) are not in the text that could be found here (only the first page of the paper, via its public copies), so none is quoted',
    ];
    notes.push(`time scaling shrinks the windows, not the work: a prepare (a stem specialised, or a sandbox process started, ~100 ms of a core by executor/runtime-pool.ts's own measure) lasts ~${Math.round(0.1 * timeScale)} scaled seconds at scale ${timeScale}, while the policy prepares the function ${Math.round((trainingGapMin - prewarmMin) * 100) / 100} min before the trained gap's call: a probe just after the prewarm window opens (${prewarmMin} min) can find the prepare still under way`);
    if (options.quick) notes.push(`--quick: ${gaps.length} gaps, 1 repeat, training at ${trainingGapMin} min (the full run: 16 gaps from 1 to 30 min, 3 repeats, training at 5.5 min)`);

    await publish('backoff', options, {
      rows,
      ratios,
      targets,
      notes,
      plot: {
        rows: samples.filter((sample) => sample.phase === 'probe').map((sample) => ({ policy: sample.policy, gapMin: sample.gapMin, ms: sample.ms, call: sample.cold > 0 ? 'cold' : 'warm' })),
        spec: {
          title: { text: 'backoff: one call after an idle gap (McGrath and Brenner\'s backoff test)', subtitle: [`time scaled by ${timeScale}; each function first trained with ${TRAINING_CALLS} calls every ${trainingGapMin} min; line: median of ${repeats}`, `shaded: the adaptive policy's learnt window (${prewarmMin} to ${windowEndMin} min); dashed: the fixed window (${FIXED_KEEP_ALIVE_MIN} min)`] },
          width: 520,
          height: 300,
          layer: [
            { data: { values: [{ from: prewarmMin, to: windowEndMin }] }, mark: { type: 'rect', color: ADAPTIVE_COLOUR, opacity: 0.15 }, encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } } },
            { data: { values: [{ at: FIXED_KEEP_ALIVE_MIN }] }, mark: { type: 'rule', color: FIXED_COLOUR, strokeDash: [4, 4] }, encoding: { x: { field: 'at', type: 'quantitative' } } },
            { mark: { type: 'line' }, encoding: { x: { field: 'gapMin', type: 'quantitative', title: 'idle gap before the call (minutes, unscaled)' }, y: { aggregate: 'median', field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'call latency (ms, log)' }, color: { field: 'policy', type: 'nominal', title: 'keep-alive', scale: { domain: policies, range: [FIXED_COLOUR, ADAPTIVE_COLOUR] } } } },
            { mark: { type: 'point', filled: true, size: 60, opacity: 0.75 }, encoding: { x: { field: 'gapMin', type: 'quantitative' }, y: { field: 'ms', type: 'quantitative' }, color: { field: 'policy', type: 'nominal', scale: { domain: policies, range: [FIXED_COLOUR, ADAPTIVE_COLOUR] } }, shape: { field: 'call', type: 'nominal', title: 'call' } } },
          ],
        },
      },
    });
  } finally {
    await started.stop();
  }
};
