/**
 * The scheduler's tasks carried out on the real KVS (what `lfaas scheduler` gives its shell):
 * each {@link SchedulerTask} becomes KVS client operations, batched by the client per turn.
 */
import { ensureLfaasError } from '../lattices/index.js';
import type { AnyLattice, LfaasError } from '../lattices/index.js';
import type { Effect, MachineTasks } from '../protocol/index.js';

/** The KVS work a scheduler hands its shell. */
export type SchedulerTask =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'getMany'; readonly keys: readonly string[] }
  | { readonly op: 'put'; readonly key: string; readonly value: AnyLattice; readonly ack: 'local' | 'durable' | 'replicated' }
  | { readonly op: 'delete'; readonly keys: readonly string[] };

/** What the scheduler does with a task's outcome (continuation-passing, the machine stays synchronous). */
export type Continuation = (error: LfaasError | undefined, result: unknown) => Effect[];

/** What the scheduler needs of the KVS (the SDK's `KvsClient` has it). */
export interface SchedulerKvs {
  get(key: string): Promise<AnyLattice | undefined>;
  put(key: string, value: AnyLattice, options?: { ack?: 'local' | 'durable' | 'replicated' }): Promise<void>;
  delete(key: string, options?: { ack?: 'local' | 'durable' | 'replicated' }): Promise<void>;
}

export class KvsTasks implements MachineTasks {
  constructor(private readonly kvs: SchedulerKvs) {}

  run(task: unknown, done: (error: Error | undefined, result?: unknown) => void): void {
    this.perform(task as SchedulerTask).then(
      (result) => done(undefined, result),
      (error: unknown) => done(ensureLfaasError(error)),
    );
  }

  private async perform(task: SchedulerTask): Promise<unknown> {
    switch (task.op) {
      case 'get':
        return this.kvs.get(task.key);
      case 'getMany':
        return Promise.all(task.keys.map((key) => this.kvs.get(key)));
      case 'put':
        return this.kvs.put(task.key, task.value, { ack: task.ack });
      case 'delete':
        await Promise.all(task.keys.map((key) => this.kvs.delete(key, { ack: 'replicated' })));
        return undefined;
    }
  }
}
