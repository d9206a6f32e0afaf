/**
 * The public SDK. Today it re-exports the lattice library and the error catalogue; the KVS client
 * (issue 3) and calls and DAGs (issue 4) join it.
 */
export * from '../lattices/index.js';
