/**
 * The lattice key-value store: storage shards and the storage node that hosts
 * them, routing nodes, the hash rings, the disk tier and the statistics each shard keeps.
 */
export { Shard } from './shard.js';
export type { ShardMemory } from './shard.js';
export type { ShardOptions } from './shard-settings.js';
export { DEFAULT_SHARD_MEMORY_BYTES } from './shard-settings.js';
export type { DiskReader } from './shard-tier.js';
export { StorageNode } from './storage-node.js';
export type { StorageNodeOptions } from './storage-node.js';
export { RoutingNode } from './routing.js';
export type { RoutingOptions } from './routing.js';
export { Membership, HashRing, stableHash, nodeFromWire, nodeToWire, DEFAULT_VIRTUAL_NODES, MEMBERSHIP_LIMITS } from './ring.js';
export type { RingNode, ReplicationFactors } from './ring.js';
export { FIRST_GENERATION, mergeEntries, entriesEqual, entryFromTuple, entryToTuple, encodeEntry, decodeEntry } from './entry.js';
export type { Entry } from './entry.js';
export { MemoryStore, LmdbStore } from './store.js';
export type { ShardStore, StoreWrite } from './store.js';
export { ShardStats } from './shard-stats.js';
export type { ShardStatsSnapshot } from './shard-stats.js';
export { startMetricsServer } from './metrics-server.js';
export type { HistogramSample, MetricSample, MetricsServer, MetricsSource, Readiness, ScalarSample } from './metrics-server.js';
export { ADMIN_OWNER, DURATION_BOUNDS_SECONDS, FunctionCallMetrics, OTHER_FUNCTION, ownerLabel } from './function-call-metrics.js';
export type { FunctionCallMetricsOptions } from './function-call-metrics.js';
