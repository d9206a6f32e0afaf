/**
 * The lattice key-value store: storage nodes, routing, replication, client. Arrives with issue 3
 * (the KVS tier); this folder is empty until then.
 */
export {};
