/**
 * A scheduler machine driven by hand for unit tests: a map stands in for the KVS (its tasks are
 * carried out at once, bounded), messages go through the codec as frames would, and executors
 * report by address. Not used by the roles.
 */
import type { AnyLattice } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, envelopeWith, seededRandom } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import type { SchedulerTask } from './kvs-tasks.js';
import { SchedulerNode } from './scheduler-node.js';
import type { SchedulerOptions } from './scheduler-node.js';

const SELF = 'tcp://127.0.0.1:7400';
const CLIENT = 'tcp://127.0.0.1:7401';
export const EXECUTORS = ['tcp://127.0.0.1:7410', 'tcp://127.0.0.1:7411', 'tcp://127.0.0.1:7412', 'tcp://127.0.0.1:7413'];

export type Send = Extract<Effect, { kind: 'send' }>;

export class Harness {
  readonly node: SchedulerNode;
  nowMs = 0;

  constructor(
    private readonly kvs = new Map<string, AnyLattice>(),
    options: Partial<SchedulerOptions> = {},
  ) {
    this.node = new SchedulerNode({ address: SELF, random: seededRandom(7), pinExecutors: 2, ...options });
    this.node.handle({ kind: 'start' }, 0);
  }

  /** Another scheduler on the same KVS. */
  sibling(): Harness {
    const other = new Harness(this.kvs);
    other.nowMs = this.nowMs;
    return other;
  }

  /** Delivers `body` (through the codec, as a frame would) and returns what was sent. */
  deliver(body: PbTypes.IEnvelope, header: { requestId?: number; replyTo?: string; sender?: string } = {}): Send[] {
    const envelope = decodeEnvelope(encodeEnvelope(envelopeWith(body, { sender: CLIENT, ...header })));
    return this.run(this.node.handle({ kind: 'message', envelope }, this.nowMs));
  }

  /** Every executor reports (warm: the functions warm on each, by address). */
  statuses(warm: Readonly<Record<string, readonly string[]>> = {}, loads: Readonly<Record<string, PbTypes.IFunctionLoad[]>> = {}, addresses = EXECUTORS): Send[] {
    return addresses.flatMap((address, i) =>
      this.deliver({ executorStatus: { executorId: `${address}#1`, address, utilisation: i * 0.1, capacity: 4, warmFunctions: [...(warm[address] ?? [])], functions: loads[address] ?? [] } }),
    );
  }

  private run(effects: readonly Effect[]): Send[] {
    const out: Send[] = [];
    const queue = [...effects];
    for (let steps = 0; queue.length > 0 && steps < 1000; steps++) {
      const effect = queue.shift()!;
      if (effect.kind === 'send') out.push(effect);
      if (effect.kind !== 'task') continue;
      const task = effect.task as SchedulerTask;
      let result: unknown;
      if (task.op === 'get') result = this.kvs.get(task.key);
      else if (task.op === 'getMany') result = task.keys.map((key) => this.kvs.get(key));
      else if (task.op === 'put') this.kvs.set(task.key, task.value);
      else for (const key of task.keys) this.kvs.delete(key);
      queue.push(...this.node.handle({ kind: 'taskDone', token: effect.token, result }, this.nowMs));
    }
    return out;
  }
}
