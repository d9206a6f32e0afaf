/**
 * Node providers: how the monitor adds and removes nodes of a role. One interface for every place
 * nodes can live; the local provider (cli/local-provider.ts) starts and stops `lfaas kvs` and
 * `lfaas executor` processes on this machine, and a Kubernetes provider would scale a StatefulSet
 * and a Deployment the same way.
 *
 * A provider gives each node it starts a member key of its own (listed under the node's role in
 * the cluster's member list) and retires that key when it removes the node.
 */
import type { ScaledRole } from './policy.js';

export interface NodeProvider {
  /**
   * Starts one more node of `role` and resolves once it serves: with its name (a storage node's
   * id, an executor's address).
   */
  add(role: ScaledRole): Promise<string>;
  /**
   * Removes a node: a storage node departs gracefully (every key handed off first, then it
   * exits); an executor is stopped once its running calls finish. `target` is what `add`
   * resolved with (or a node the provider was told about).
   */
  remove(role: ScaledRole, target: string): Promise<void>;
  /** The nodes of `role` it runs now. */
  nodes(role: ScaledRole): readonly string[];
}
