/**
 * The lattice key-value store. Today: the gossiping replica machine (the seed of the storage
 * shard); storage nodes, routing and the client arrive with issue 3.
 */
export { GossipReplica } from './gossip-replica.js';
export type { GossipReplicaOptions } from './gossip-replica.js';
