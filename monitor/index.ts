/**
 * The monitor role: the machine that watches the cluster and scales it, its policies, and the
 * interface of the node providers that carry its decisions out.
 */
export { MonitorNode } from './monitor-node.js';
export type { MonitorEvent, MonitorOptions, MonitorTask } from './monitor-node.js';
export { Autoscaler, DEFAULT_POLICY, p99OfHistogram, policyWith } from './policy.js';
export type { Action, AutoscalePolicy, ClusterSnapshot, ExecutorNodeView, ExecutorPolicy, HotKeyPolicy, ScaledRole, StorageNodeView, StoragePolicy } from './policy.js';
export type { NodeProvider } from './node-provider.js';
export { DEFAULT_PIN_POLICY, Pinner } from './pinning.js';
export type { FunctionRateView, PinChange, PinPolicy } from './pinning.js';
