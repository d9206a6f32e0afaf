/**
 * The public SDK: the lattice library and error catalogue, the KVS client, and the FaaS client
 * (functions, DAGs, sync and async calls) with its typed DAG builder.
 */
export * from '../lattices/index.js';
export type { FunctionContext } from '../protocol/index.js';
export { KvsClient } from './kvs-client.js';
export type { KvsClientOptions, KvsConnectOptions, WriteOptions, AckMode, Subscription } from './kvs-client.js';
export { CLUSTER_FILE, findClusterFile, processAlive, readClusterFile, removeClusterFile, resolveCluster, writeClusterFile } from './cluster-file.js';
export type { ClusterFile, ResolvedCluster } from './cluster-file.js';
export { CONNECT_TIMEOUT_MS } from './cluster-probe.js';
export { ANNOUNCE_PERIOD_MS, DISCOVERY_REFRESH_MS, ServiceAnnouncer, ServiceFollower, askServices, discoverSchedulers } from './discovery.js';
export type { ServiceList } from './discovery.js';
export { listServices } from './services.js';
export type { ListServicesOptions } from './services.js';
export { LatticeFaas, ref } from './faas.js';
export type { CallArgs, CallFuture, CallOptions, ConnectOptions, Consistency, FunctionInfo, Ref, RegisterOptions, TypedFunction } from './faas.js';
export type { WatchOptions } from './watch.js';
export { terminalSafe } from './observe.js';
export type { FunctionLogEntry, InvocationEntry, InvocationState, InvocationsOptions, LogsOptions } from './observe.js';
export { DagBuilder, dag } from './dag-builder.js';
export type { AnyFunction, DagDefinition, DagHandle, DagInput, FunctionHandle, UserArgs, UserResult } from './dag-builder.js';
export { bundleFunction, checkFunctionCode, BUNDLE_BYTES_MAX } from './bundle.js';
export type { BundledFunction } from './bundle.js';
export { putModel, getModel } from './models.js';
export type { KvsHolder } from './models.js';
export { checkTensor, float32OfTensor, tensorFromFloat32, tensorElements, TENSOR_ELEMENT_BYTES } from '../protocol/index.js';
export type { TensorType, TensorValue, ModelManifest } from '../protocol/index.js';
