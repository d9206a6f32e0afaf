/** Schedulers: registry, placement, admission, prewarming. Arrives with issue 4 (the FaaS core). */
export {};
