/**
 * The systems the `compose` and `concurrency` benchmarks measure side by side: our local cluster
 * (bench/faas-cluster.ts: a no-op call and the DAG `square(increment(x))`), the raw zeromq echo
 * (one round trip: the physical limit of a call's network path) and Restate (installed on demand;
 * its no-op handler and a handler that calls two others). A peer that cannot start is left out,
 * with a note saying why.
 */
import { rawClient, startServer } from './echo-peer.js';
import { startFaasBenchCluster } from './faas-cluster.js';
import { startRestate } from './restate-peer.js';

export interface MeasuredSystem {
  readonly system: string;
  readonly test: 'noop call' | 'square(increment(x))' | 'round trip';
  readonly run: () => Promise<unknown>;
  /** The server processes, for their CPU use. */
  readonly pids: readonly number[];
}

export async function startFaasSystems(notes: string[]): Promise<{ systems: MeasuredSystem[]; stop(): Promise<void> }> {
  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
  const echo = await startServer('raw').catch(async (error: unknown) => {
    await cluster.stop();
    throw error;
  });
  const restate = await startRestate((line) => notes.push(`restate: ${line}`));
  if (restate === undefined) notes.push('Restate could not be started (see above): its rows are missing');
  const echoClient = await rawClient(echo.address);
  const faasPids = [cluster.schedulerPid, ...cluster.executorPids];
  let x = 0;
  const systems: MeasuredSystem[] = [
    { system: 'lattice-faas', test: 'noop call', run: () => cluster.faas.call(cluster.noop, [x++]), pids: faasPids },
    { system: 'lattice-faas', test: 'square(increment(x))', run: () => cluster.faas.callDag(cluster.compose, { increment: [x++ % 1000] }), pids: faasPids },
    { system: 'raw zeromq echo', test: 'round trip', run: () => echoClient.roundTrip(), pids: [echo.child.pid!] },
  ];
  if (restate !== undefined) {
    systems.push({ system: 'restate', test: 'noop call', run: () => restate.noop(x++), pids: restate.pids });
    systems.push({ system: 'restate', test: 'square(increment(x))', run: () => restate.compose(x++ % 1000), pids: restate.pids });
    notes.push(`restate version: ${restate.version}`);
  }
  return {
    systems,
    stop: async () => {
      await echoClient.close();
      await restate?.stop();
      echo.child.kill('SIGTERM');
      await cluster.stop();
    },
  };
}
