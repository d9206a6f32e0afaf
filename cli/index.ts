/** The `lfaas` command line; `main.ts` is its entry point. The launcher is shared with the benches. */
export { startRole, stopChildren, waitForExecutors } from './up.js';
export type { Started, StartRoleOptions } from './up.js';
export { freePorts } from './free-port.js';
export { waitForRing } from './ring-ready.js';
