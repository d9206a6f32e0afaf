/**
 * Examples of Lattice FaaS programs: function modules under `functions/`, each a TypeScript module
 * whose default export is the function (`lfaas deploy examples/functions/square.ts` bundles and
 * registers one). `npm start` (`lfaas up --demo`, cli/demo.ts) deploys them and runs:
 * - the shared counter through functions: `counter-increment` (a Counter lattice merged, every
 *   concurrent increment kept) against `naive-increment` (read-modify-write of a plain value);
 * - the DAG `square(increment(x))`, built with the typed `dag(...)` builder;
 * - owners: `read-key` deployed by two owners, each reaching only its own namespace.
 *
 * They are re-exported here for their types (`faas.function<typeof square>('square')`). Retwis
 * (`retwis/`, a Twitter clone: its README says what it shows) is re-exported as a namespace:
 * `retwis.deployRetwis(faas)` registers its functions.
 */
export { default as increment } from './functions/increment.js';
export { default as square } from './functions/square.js';
export { default as counterIncrement } from './functions/counter-increment.js';
export { default as naiveIncrement } from './functions/naive-increment.js';
export { default as readKey } from './functions/read-key.js';
export * as retwis from './retwis/deploy.js';
export * as predict from './predict/deploy.js';
