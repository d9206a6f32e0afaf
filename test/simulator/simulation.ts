/**
 * The deterministic simulator: any number of sans-I/O machines, each in the same shell that runs
 * it in production (`runMachine`), over the in-memory network with a virtual clock and one seeded
 * PRNG. Faults: message loss, duplication, reordering and delay (network options), partitions,
 * and crash/restart of a machine (its factory decides what survives, as a disk would). With the
 * `capacity` option (capacity.ts; off by default) the chosen machines serve a bounded number of
 * messages per virtual second, so load queues and overload drops in virtual time.
 */
import { MemoryNetwork, runMachine, seededRandom } from '../../protocol/index.js';
import type { Machine, MachineInput, MachineShell, MachineStore, MachineTasks, Random, Role, Transport } from '../../protocol/index.js';
import { VirtualClock } from '../../protocol/testing.js';
import { CapacityTransport, newCapacityCounters } from './capacity.js';
import type { CapacityCounters, CapacityOptions } from './capacity.js';

export interface SimulationOptions {
  readonly seed: number;
  /** One-way delay range of the network. */
  readonly delayMs?: { readonly min: number; readonly max: number };
  readonly dropRate?: number;
  readonly duplicateRate?: number;
  readonly reorder?: boolean;
  /**
   * Membership modelled: machines added with a role are its members, everyone else a client, and
   * every machine's shell refuses what a sender's role may not send (message-rights.ts).
   */
  readonly authenticate?: boolean;
  /** The capacity model: machines (those `applies` picks) serve at most `perSecond` messages a second. */
  readonly capacity?: CapacityOptions;
}

/** A machine with the disk it persists to (a store that survives crashes, as disks do). */
export interface Booted {
  readonly machine: Machine;
  readonly store?: MachineStore & { close(): Promise<void> };
  /** Where its `task` effects go (a simulated KVS, simulated runtimes). */
  readonly tasks?: MachineTasks;
}

interface Node {
  readonly factory: () => Machine | Booted;
  shell: MachineShell | undefined;
  store: Booted['store'] | undefined;
  tasks: MachineTasks | undefined;
  /** The machine itself (the shell runs a recording wrapper around it). */
  machine: Machine | undefined;
}

export class Simulation {
  readonly clock = new VirtualClock();
  readonly random: Random;
  readonly network: MemoryNetwork;
  private readonly nodes = new Map<string, Node>();
  /** Membership, modelled: each machine added with a role is a member of it (the network proves senders). */
  private readonly roles = new Map<string, Role>();
  /** Frames refused for their sender's role, over every shell so far (crashed ones included). */
  private unauthorisedEarlier = 0;
  private traceHash = 0x811c9dc5;
  /** Per capacity-bounded machine, what its queue served and dropped (kept across restarts). */
  private readonly capacityCounters = new Map<string, CapacityCounters>();
  /** Inputs handed to machines so far. */
  steps = 0;

  constructor(readonly options: SimulationOptions) {
    this.random = seededRandom(options.seed);
    this.network = new MemoryNetwork({
      clock: this.clock,
      random: this.random.fork(),
      delayMs: options.delayMs ?? { min: 1, max: 5 },
      dropRate: options.dropRate ?? 0,
      duplicateRate: options.duplicateRate ?? 0,
      reorder: options.reorder ?? false,
    });
  }

  /**
   * Adds a machine; `factory` is called now and at every restart (it may return the machine with
   * its store: `persist` effects then go there). Its id is its `mem://` name.
   */
  add(id: string, factory: () => Machine | Booted, role?: Role): void {
    if (this.nodes.has(id)) throw new Error(`machine ${id} already exists`);
    if (role !== undefined) this.roles.set(id, role);
    const node: Node = { factory, shell: undefined, machine: undefined, store: undefined, tasks: undefined };
    this.nodes.set(id, node);
    this.boot(id, node);
  }

  /** Frames refused (UNAUTHORISED) because their sender may not send them, over all machines. */
  get unauthorised(): number {
    let total = this.unauthorisedEarlier;
    for (const node of this.nodes.values()) total += node.shell?.counters.framesUnauthorised ?? 0;
    return total;
  }

  /** The address other machines use to reach `id`. */
  address(id: string): string {
    return `mem://${id}`;
  }

  isUp(id: string): boolean {
    return this.nodes.get(id)?.shell !== undefined;
  }

  /** The running machine of `id` (undefined while crashed). */
  machine<M extends Machine = Machine>(id: string): M | undefined {
    const node = this.nodes.get(id);
    return node?.shell === undefined ? undefined : (node.machine as M | undefined);
  }

  /** Hands an input to a running machine now (a client operation, for instance). */
  deliver(id: string, input: MachineInput): void {
    this.nodes.get(id)?.shell?.deliver(input);
  }

  /** Stops a machine at once: its timers die, frames to it are lost, its memory is gone. */
  crash(id: string): void {
    const node = this.nodes.get(id);
    if (node?.shell === undefined) return;
    this.unauthorisedEarlier += node.shell.counters.framesUnauthorised;
    void node.shell.stop();
    void node.store?.close();
    node.shell = undefined;
    node.store = undefined;
    this.network.crash(id);
  }

  /**
   * Takes a machine out for good (a node the provider removed): it stops as in a crash, and its id
   * is no member any more. Its capacity counters stay readable.
   */
  remove(id: string): void {
    this.crash(id);
    this.nodes.delete(id);
    this.roles.delete(id);
  }

  /**
   * A bare endpoint on the network for a host that is not a machine (a node provider asking a
   * node to depart, a monitor's host setting replication factors), a member of `role` if given.
   */
  endpoint(id: string, role?: Role): Transport {
    if (this.nodes.has(id)) throw new Error(`machine ${id} already exists`);
    if (role !== undefined) this.roles.set(id, role);
    return this.network.endpoint(id);
  }

  /** The capacity model's counters of `id` (undefined: not bounded, or no capacity model). */
  capacityOf(id: string): Readonly<CapacityCounters> | undefined {
    return this.capacityCounters.get(id);
  }

  /** Starts a crashed machine again from its factory. */
  restart(id: string): void {
    const node = this.nodes.get(id);
    if (node === undefined || node.shell !== undefined) return;
    this.network.recover(id);
    this.boot(id, node);
  }

  partition(sideA: readonly string[], sideB: readonly string[]): void {
    this.network.partition([...sideA], [...sideB]);
  }

  heal(): void {
    this.network.heal();
  }

  /** Advances virtual time by `durationMs`, running at most `maxSteps` timers (a hard bound). */
  runFor(durationMs: number, maxSteps = 1_000_000): void {
    const ran = this.clock.runUntil(this.clock.now() + durationMs, maxSteps);
    if (ran >= maxSteps) throw new Error(`simulation did not settle: ${maxSteps} steps in ${durationMs} ms (seed ${this.options.seed})`);
  }

  /** A hash of every input every machine was handed, with its time: equal seeds give equal traces. */
  get trace(): number {
    return this.traceHash >>> 0;
  }

  private boot(id: string, node: Node): void {
    const booted = node.factory();
    if ('handle' in booted) {
      node.machine = booted;
      node.store = undefined;
      node.tasks = undefined;
    } else {
      node.machine = booted.machine;
      node.store = booted.store;
      node.tasks = booted.tasks;
    }
    node.shell = runMachine(this.recorded(node.machine), this.transportOf(id), this.clock, {
      ...(this.options.authenticate === true ? { membership: { roleOf: (peer: string) => this.roles.get(peer) } } : {}),
      ...(node.store === undefined ? {} : { store: node.store }),
      ...(node.tasks === undefined ? {} : { tasks: node.tasks }),
    });
  }

  /** The machine's endpoint, behind a bounded queue when the capacity model applies to it. */
  private transportOf(id: string): Transport {
    const endpoint = this.network.endpoint(id);
    const capacity = this.options.capacity;
    if (capacity === undefined || (capacity.applies !== undefined && !capacity.applies(id))) return endpoint;
    let counters = this.capacityCounters.get(id);
    if (counters === undefined) this.capacityCounters.set(id, (counters = newCapacityCounters()));
    return new CapacityTransport(endpoint, this.clock, capacity, counters);
  }

  /** Wraps a machine so that every input it is handed feeds the trace hash. */
  private recorded(machine: Machine): Machine {
    return {
      id: machine.id,
      handle: (input, nowMs) => {
        this.steps++;
        const label = input.kind === 'message' ? `m:${input.envelope.body ?? ''}:${input.envelope.sender}` : input.kind === 'timer' ? `t:${input.timer}` : input.kind === 'taskDone' ? `d:${input.token}` : 's';
        this.mix(`${machine.id}@${nowMs}:${label}`);
        return machine.handle(input, nowMs);
      },
    };
  }

  private mix(text: string): void {
    let hash = this.traceHash;
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
    this.traceHash = hash;
  }
}

/**
 * Runs `body` for `count` seeds starting at `firstSeed` (or the one seed in LFAAS_SEED); on a
 * failure, rethrows with the seed and the command that reruns it.
 *
 * Bounded in time as well as in count: in the quick (CI) mode, seeds run in order until `count`
 * or `budgetMs` of wall time (SEED_BUDGET_MS; LFAAS_SEED_BUDGET_MS overrides), whichever comes
 * first, and at least one always runs. A slow or loaded machine checks a shorter prefix of the
 * same seeds (it says how many) instead of failing on the test's timeout; LFAAS_LONG=1 runs every
 * seed, without a budget. Returns how many seeds ran.
 *
 * It yields to the event loop between seeds: a simulation runs synchronously, and the promise
 * reactions its transports queue (each `send(...).catch(...)`) only run when it yields; without
 * that, thousands of seeds would keep every simulation alive until the end (it took 4.6 GB).
 */
export async function forEachSeed(count: number, body: (seed: number) => void, firstSeed = 1, budgetMs = seedBudgetMs()): Promise<number> {
  const only = process.env['LFAAS_SEED'];
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => firstSeed + i);
  const deadline = performance.now() + budgetMs;
  let ran = 0;
  for (const seed of seeds) {
    if (ran > 0 && performance.now() > deadline) break;
    await new Promise((resolve) => setImmediate(resolve));
    try {
      body(seed);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`simulation failed with seed ${seed} (rerun: LFAAS_SEED=${seed} npx vitest run <this file>): ${message}`, { cause: error });
    }
    ran++;
  }
  if (ran < seeds.length) console.log(`[simulation] seeds ${firstSeed}..${firstSeed + ran - 1}: ${ran} of ${seeds.length} within the ${Math.round(budgetMs / 1000)} s budget (LFAAS_LONG=1 runs them all)`);
  return ran;
}

/** The wall-time budget of one simulation test's seeds in the quick mode. */
export const SEED_BUDGET_MS = 30_000;

function seedBudgetMs(): number {
  if (process.env['LFAAS_LONG'] === '1') return Number.POSITIVE_INFINITY;
  const given = Number(process.env['LFAAS_SEED_BUDGET_MS']);
  return Number.isFinite(given) && given > 0 ? given : SEED_BUDGET_MS;
}

/** Seeds per simulation test: a quick CI mode, many more with LFAAS_LONG=1. */
export function seedCount(ci: number): number {
  return process.env['LFAAS_LONG'] === '1' ? ci * 20 : ci;
}
