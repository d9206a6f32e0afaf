/** The `lfaas` command line; `main.ts` is its entry point. */
export {};
