/**
 * `lfaas scheduler`: one scheduler as its own process. Its machine's KVS tasks go through a KVS
 * client (the registry lives in the KVS, shared by every scheduler); executors find it through
 * their `--schedulers` list and report to it from then on. Each start is a new boot
 * (`<address>#<nonce>`): the owner of the async calls it accepts, which another scheduler (or its
 * own next boot) takes over once its lease expires. Prometheus metrics on `metricsPort`, read from
 * the machine's counters at each scrape.
 */
import { randomBytes } from 'node:crypto';
import { KvsClient, ServiceAnnouncer } from '../client/index.js';
import { startMetricsServer } from '../kvs/index.js';
import type { MetricSample, Readiness } from '../kvs/index.js';
import { bindTransport, runMachine, seededRandom, systemClock } from '../protocol/index.js';
import { KvsTasks, SchedulerNode, schedulerCallSamples } from '../scheduler/index.js';
import { wireCountersOf, wireSamples, zapSamples } from './wire-metrics.js';
import { announceReady, guardProcess, logError, stopOnSignals } from './process.js';
import { setLogNode } from './log.js';
import { startTracing } from './tracing.js';
import { advertised } from './advertise.js';
import { roleSecurity } from './security.js';
import type { SecurityOptions } from './security.js';

export interface SchedulerProcessOptions extends SecurityOptions {
  readonly host: string;
  /** The host other machines reach this role at (default: `host`; docs/multi-host.md). */
  readonly advertise?: string;
  readonly port: number;
  readonly routing: readonly string[];
  readonly executorTimeoutMs: number;
  /** -1: no metrics server; 0: an ephemeral port. */
  readonly metricsPort: number;
  /** Executors each function is pinned on at registration (default 2; 0: none, every first call is cold). */
  readonly pinExecutors?: number;
}

/** The scheduler's counters as Prometheus counters: field of `SchedulerNode.counters` -> name and help. */
const SCHEDULER_COUNTERS: Readonly<Record<keyof SchedulerNode['counters'], readonly [name: string, help: string]>> = {
  calls: ['lfaas_scheduler_calls_accepted_total', 'Function calls the scheduler received (lfaas_scheduler_calls_total splits them by function and outcome).'],
  dagCalls: ['lfaas_scheduler_dag_calls_total', 'DAG calls the scheduler accepted.'],
  asyncCalls: ['lfaas_scheduler_async_calls_total', 'Async calls (function or DAG) the scheduler accepted.'],
  dispatched: ['lfaas_scheduler_dispatched_total', 'Runs dispatched to executors (re-dispatches included).'],
  completed: ['lfaas_scheduler_completed_total', 'Runs the executors reported finished.'],
  lost: ['lfaas_scheduler_lost_total', 'Runs lost with an executor that died or restarted.'],
  redispatched: ['lfaas_scheduler_redispatched_total', 'Lost async runs dispatched again.'],
  noCapacity: ['lfaas_scheduler_no_capacity_total', 'Calls refused or held back because no executor had room (SCHED_NO_CAPACITY).'],
  registered: ['lfaas_scheduler_registrations_total', 'Function versions registered through this scheduler.'],
  executorsLost: ['lfaas_scheduler_executors_lost_total', 'Executors dropped from the view (silent for the executor timeout, or restarted).'],
  executorsRestarted: ['lfaas_scheduler_executors_restarted_total', 'Executors seen restarted at the same address (a new incarnation).'],
  retriesQueued: ['lfaas_scheduler_retries_queued_total', 'Async runs queued to wait for an executor with room.'],
  retriesDispatched: ['lfaas_scheduler_retries_dispatched_total', 'Queued async runs dispatched once room was found.'],
  retriesExpired: ['lfaas_scheduler_retries_expired_total', 'Queued async runs whose deadline passed before room was found.'],
  pinsSent: ['lfaas_scheduler_pins_sent_total', 'Prepare messages sent to pin a function on an executor (first sends and re-sends until it is warm there).'],
  pinCountsReceived: ['lfaas_scheduler_pin_counts_received_total', "The monitor's pin counts received (how many executors keep each hot function warm)."],
  pinCountsRefused: ['lfaas_scheduler_pin_counts_refused_total', 'Pin counts messages refused (a list longer than the bound).'],
  chainPrepares: ['lfaas_scheduler_chain_prepares_total', 'Functions prepared ahead of their call because they usually follow the function just called (DAG edges, callers\' consecutive calls).'],
  leaseRenewals: ['lfaas_scheduler_lease_renewals_total', "Renewals of this scheduler boot's lease acknowledged by the KVS."],
  takeoverPasses: ['lfaas_scheduler_takeover_passes_total', 'Takeover passes started (each reads the known boots and their leases).'],
  bootsExpired: ['lfaas_scheduler_boots_expired_total', 'Scheduler boots this scheduler saw with an expired lease (or a previous boot of its own address).'],
  bootsRetired: ['lfaas_scheduler_boots_retired_total', 'Expired scheduler boots with nothing left pending, marked gone (their lease and index deleted).'],
  takenOver: ['lfaas_scheduler_taken_over_total', 'Async runs of a dead scheduler boot claimed and dispatched again by this scheduler.'],
  takeoverSettled: ['lfaas_scheduler_takeover_settled_total', 'Pending runs of a dead scheduler boot found with their result already written.'],
  takeoverFailed: ['lfaas_scheduler_takeover_failed_total', 'Runs taken over too many times, given EXEC_LOST as their result.'],
  claimsLost: ['lfaas_scheduler_claims_lost_total', "Claims of a dead boot's run that read back a later claim of another scheduler (not dispatched here)."],
  orphansAdopted: ['lfaas_scheduler_orphans_adopted_total', "Runs of this boot's own index it no longer held (a failed result write), dispatched again."],
  recordsMalformed: ['lfaas_scheduler_records_malformed_total', 'Execution records, index entries, leases or boots entries read from the KVS that did not decode (skipped).'],
  indexRotations: ['lfaas_scheduler_index_rotations_total', "Rewrites of this boot's index of pending runs into a new generation (dropping removed entries)."],
  bootsRotations: ['lfaas_scheduler_boots_rotations_total', 'Moves of the set of known scheduler boots to a new epoch (dropping gone boots).'],
};

/** The scheduler's series at this moment, each labelled with its address. */
function schedulerSamples(scheduler: SchedulerNode, node: string): MetricSample[] {
  const labels = { node };
  const samples: MetricSample[] = Object.entries(SCHEDULER_COUNTERS).map(([field, [name, help]]) => ({ name, help, type: 'counter', value: scheduler.counters[field as keyof SchedulerNode['counters']], labels }));
  samples.push(
    { name: 'lfaas_scheduler_runs_in_flight', help: 'Runs dispatched and not yet finished.', type: 'gauge', value: scheduler.runCount, labels },
    { name: 'lfaas_scheduler_executors', help: 'Executors the scheduler knows alive (heard from within the executor timeout).', type: 'gauge', value: scheduler.executorAddresses().length, labels },
    { name: 'lfaas_scheduler_async_pending', help: "Async runs in this boot's index (accepted or taken over, no result yet).", type: 'gauge', value: scheduler.asyncPending, labels },
    ...schedulerCallSamples(scheduler.callMetrics, node),
  );
  return samples;
}

/**
 * Ready once bound with its KVS client connected (its registry reachable): executors find it by
 * its address and report to it, so it takes traffic before any has; the reason says how many
 * have (calls answer SCHED_NO_CAPACITY until one does).
 */
function schedulerReadiness(scheduler: SchedulerNode): Readiness {
  const executors = scheduler.executorAddresses().length;
  return { ready: true, reason: executors > 0 ? `${executors} executors alive` : 'no executor has reported yet (calls answer SCHED_NO_CAPACITY)' };
}

export async function runScheduler(options: SchedulerProcessOptions): Promise<void> {
  guardProcess('scheduler');
  const security = roleSecurity('scheduler', options);
  const transport = await bindTransport({ host: options.host, ...advertised(options), port: options.port, keyPair: security.keyPair });
  setLogNode(transport.address);
  await startTracing({ role: 'scheduler', node: transport.address });
  const kvs = await KvsClient.connect({ routing: options.routing, host: options.host, ...advertised(options), keyPair: security.keyPair, token: '' });
  // A nonce per boot: the owner of this boot's async runs, its lease and its index are
  // `<address>#<incarnation>`; a scheduler restarted at this address takes its previous boot's runs over.
  const incarnation = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  // Placement's randomness; seeded per process so two schedulers do not choose in lockstep.
  const scheduler = new SchedulerNode({ address: transport.address, random: seededRandom((Date.now() ^ (process.pid << 8)) >>> 0), executorTimeoutMs: options.executorTimeoutMs, incarnation, ...(options.pinExecutors === undefined ? {} : { pinExecutors: options.pinExecutors }) });
  const shell = runMachine(scheduler, transport, systemClock, { tasks: new KvsTasks(kvs), onError: logError(`scheduler ${transport.address}`), ...security.shell });
  const metrics = options.metricsPort < 0 ? undefined : await startMetricsServer({ host: options.host, port: options.metricsPort, samples: () => [...schedulerSamples(scheduler, transport.address), ...wireSamples(wireCountersOf(shell, transport), { node: transport.address }), ...zapSamples({ node: transport.address })], ready: () => schedulerReadiness(scheduler) });
  // Discovery: the routing nodes list this scheduler while it announces itself (client/discovery.ts).
  const announcer = new ServiceAnnouncer(transport, options.routing, 'scheduler', transport.address);
  announceReady({ role: 'scheduler', address: transport.address, boot: scheduler.boot, pid: process.pid, metricsPort: metrics?.port ?? null });
  stopOnSignals(async () => {
    announcer.stop();
    await shell.stop();
    await metrics?.close();
    await kvs.close();
  }, 'scheduler');
}
