/**
 * `npm run bench -- <name> [--quick] [--json]`: runs one benchmark, prints its table, writes
 * bench/results/<name>.json and a plot beside it; with --json the document is the last line.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autoscaleBenchmark } from './autoscale.js';
import { backoffBenchmark } from './backoff.js';
import { coldstartBenchmark } from './coldstart.js';
import { composeBenchmark } from './compose.js';
import { concurrencyBenchmark } from './concurrency.js';
import { counterBenchmark } from './counter.js';
import { executorAutoscaleBenchmark } from './executor-autoscale.js';
import { isolationBenchmark } from './isolation.js';
import { keepaliveBenchmark } from './keepalive.js';
import { kvsDurableBenchmark } from './kvs-durable.js';
import { kvsBenchmark } from './kvs.js';
import { hotkeyBenchmark } from './hotkey.js';
import { httpBenchmark } from './http.js';
import { latticeBenchmark } from './lattice.js';
import { predictBenchmark } from './predict.js';
import { retwisBenchmark } from './retwis.js';
import { tieringBenchmark } from './tiering.js';
import { wireBenchmark } from './wire.js';
import type { Benchmark } from './harness/benchmark.js';

const BENCHMARKS: Readonly<Record<string, Benchmark>> = {
  autoscale: autoscaleBenchmark,
  backoff: backoffBenchmark,
  coldstart: coldstartBenchmark,
  compose: composeBenchmark,
  concurrency: concurrencyBenchmark,
  counter: counterBenchmark,
  'executor-autoscale': executorAutoscaleBenchmark,
  hotkey: hotkeyBenchmark,
  http: httpBenchmark,
  isolation: isolationBenchmark,
  keepalive: keepaliveBenchmark,
  kvs: kvsBenchmark,
  'kvs-durable': kvsDurableBenchmark,
  lattice: latticeBenchmark,
  predict: predictBenchmark,
  retwis: retwisBenchmark,
  tiering: tieringBenchmark,
  wire: wireBenchmark,
};

const args = process.argv.slice(2);
const name = args.find((arg) => !arg.startsWith('--'));
const benchmark = name === undefined ? undefined : BENCHMARKS[name];
if (benchmark === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHMARKS).join('|')}> [--quick] [--json]`);
  process.exit(2);
}
// dist/bench/main.js -> the repository's bench/results, not dist's.
const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
await benchmark({ quick: args.includes('--quick'), json: args.includes('--json'), resultsDir, args });
