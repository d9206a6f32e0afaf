/**
 * Examples of Lattice FaaS programs. Today the shared-counter demo lives in `cli/demo.ts` (run by
 * `npm start`); the function and DAG examples (`square(increment(x))`, prediction serving) arrive
 * with the FaaS core (issue 4).
 */
export {};
