/**
 * The monitor's host in the simulator: the MachineTasks of a MonitorNode, doing in virtual time
 * what cli/monitor.ts's MonitorHost does on the real KVS and a node provider.
 * - The lease and the event log live in {@link MonitorRecords}, an in-memory model of the two
 *   KVS keys (`lfaas/monitor/lease`, an LWW record {holder, untilMs}: taken when absent, expired or
 *   already the asker's, then read back; `lfaas/events`, the last 500 events), shared by every
 *   monitor of a run and surviving their crashes as the KVS does. Each access is answered after a
 *   seeded delay.
 * - `provide` goes to the {@link SimulatedProvider} (several nodes of one add side by side).
 * - `replicate` is what `KvsClient.setReplication` sends: a ring update carrying the key's factor to
 *   a routing node (the next one on each retry), over the simulated network from the host's own
 *   endpoint, done once a routing node answers; three tries of `requestTimeoutMs`.
 * Every answer comes from a virtual-clock timer, never a promise.
 */
import { decodeEnvelope, encodeEnvelope, envelopeWith, pb } from '../../protocol/index.js';
import type { MachineTasks, Random, Transport } from '../../protocol/index.js';
import type { MonitorEvent, MonitorTask } from '../../monitor/index.js';
import type { Simulation } from '../simulator/simulation.js';
import type { SimulatedProvider } from './elastic-cluster.js';

/** Events kept in the log, as cli/monitor.ts keeps them. */
const EVENTS_MAX = 500;
const TRIES = 3;

/** The lease and the event log: the two KVS keys the monitors share. */
export class MonitorRecords {
  lease: { holder: string; untilMs: number } | undefined;
  /** The stored log (the last 500 events). */
  readonly events: MonitorEvent[] = [];
  /** Every event ever appended, with the virtual time it was stored (tests, benchmarks; bounded). */
  readonly history: { readonly atMs: number; readonly event: MonitorEvent }[] = [];

  append(event: MonitorEvent, atMs: number): void {
    this.events.push(event);
    if (this.events.length > EVENTS_MAX) this.events.splice(0, this.events.length - EVENTS_MAX);
    if (this.history.length < 100_000) this.history.push({ atMs, event });
  }
}

export interface MonitorHostOptions {
  readonly records: MonitorRecords;
  readonly provider: SimulatedProvider;
  readonly routing: readonly string[];
  readonly random: Random;
  /** The delay of one KVS access (lease, event), drawn uniformly. */
  readonly kvsDelayMs?: { readonly min: number; readonly max: number };
  readonly requestTimeoutMs?: number;
  /** The id of the host's own network endpoint (replication requests go out from it). */
  readonly endpointId: string;
}

type Done = (error: Error | undefined, result?: unknown) => void;

export class SimulatedMonitorHost implements MachineTasks {
  readonly counters = { leases: 0, events: 0, replications: 0, replicationsFailed: 0 };
  private readonly transport: Transport;
  private readonly pending = new Map<number, () => void>();
  private nextRequestId = 1;
  private nextRouting = 0;

  constructor(
    private readonly sim: Simulation,
    private readonly options: MonitorHostOptions,
  ) {
    this.transport = sim.endpoint(options.endpointId, 'monitor');
    this.transport.onFrame((frame) => {
      let responseTo: number;
      try {
        responseTo = Number(decodeEnvelope(frame).responseTo);
      } catch {
        return;
      }
      const answered = this.pending.get(responseTo);
      this.pending.delete(responseTo);
      answered?.();
    });
  }

  run(task: unknown, done: Done): void {
    const work = task as MonitorTask;
    switch (work.op) {
      case 'lease':
        this.later(() => done(undefined, this.lease(work.holder, work.leaseMs)));
        return;
      case 'event':
        this.later(() => {
          this.counters.events++;
          this.options.records.append(work.event, this.sim.clock.now());
          done(undefined);
        });
        return;
      case 'provide': {
        const action = work.action;
        if (action.kind === 'replicate') {
          this.later(() => done(new Error('replication goes through the KVS, not a provider')));
          return;
        }
        if (action.kind === 'remove') {
          this.options.provider.remove(action.role, action.target, (error) => done(error, action.target));
          return;
        }
        this.addMany(action.role, action.count ?? 1, done);
        return;
      }
      case 'replicate':
        this.replicate(work.key, work.replicas, work.shards, done);
        return;
    }
  }

  /** The lease as MonitorHost takes it: written when absent, expired or the asker's; the holder read back. */
  private lease(holder: string, leaseMs: number): string {
    this.counters.leases++;
    const records = this.options.records;
    const now = this.sim.clock.now();
    if (records.lease === undefined || records.lease.untilMs < now || records.lease.holder === holder) records.lease = { holder, untilMs: now + leaseMs };
    return records.lease.untilMs >= now ? records.lease.holder : '';
  }

  /** `count` nodes side by side: done with the names of those that joined, or the first error if none did. */
  private addMany(role: 'executor' | 'storage', count: number, done: Done): void {
    const names: string[] = [];
    let firstError: Error | undefined;
    let left = count;
    for (let i = 0; i < count; i++) {
      this.options.provider.add(role, (error, node) => {
        if (error !== undefined) firstError ??= error;
        else if (node !== undefined) names.push(node);
        if (--left > 0) return;
        if (names.length === 0 && firstError !== undefined) done(firstError);
        else done(undefined, names.join(' '));
      });
    }
  }

  private replicate(key: string, replicas: number, shards: number, done: Done, attempt = 1): void {
    const requestId = this.nextRequestId++;
    const to = this.options.routing[this.nextRouting++ % this.options.routing.length]!;
    let finished = false;
    this.pending.set(requestId, () => {
      if (finished) return;
      finished = true;
      this.counters.replications++;
      done(undefined);
    });
    const envelope = envelopeWith({ ringUpdate: { replication: [{ key, tier: pb.Tier.TIER_MEMORY, global: replicas, local: shards }] } }, { requestId, replyTo: this.transport.address, sender: this.transport.address });
    void this.transport.send(to, encodeEnvelope(envelope)).catch(() => undefined);
    this.sim.clock.setTimer(this.options.requestTimeoutMs ?? 500, () => {
      if (finished) return;
      finished = true;
      this.pending.delete(requestId);
      if (attempt < TRIES) this.replicate(key, replicas, shards, done, attempt + 1);
      else {
        this.counters.replicationsFailed++;
        done(new Error(`no routing node answered the replication of ${JSON.stringify(key)} in ${TRIES} tries`));
      }
    });
  }

  /** Runs `work` after a seeded KVS delay. */
  private later(work: () => void): void {
    const delay = this.options.kvsDelayMs ?? { min: 1, max: 4 };
    this.sim.clock.setTimer(delay.min + (delay.max > delay.min ? this.options.random.int(delay.max - delay.min + 1) : 0), work);
  }
}
