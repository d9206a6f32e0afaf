/** Executors: caches, runtime pools, the user library `ctx`. Arrives with issue 4 (the FaaS core). */
export {};
