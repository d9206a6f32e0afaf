/**
 * `npm run bench -- <name> [--quick] [--json]`: runs one benchmark, prints its table, writes
 * bench/results/<name>.json and a plot beside it; with --json the document is the last line.
 * `npm run bench -- all [--quick]`: every benchmark in turn, each its own child process with a time
 * limit (harness/run-all.ts), then bench/results/summary.md (harness/summary.ts).
 * `npm run bench -- summary`: rebuilds summary.md from the documents as they are, running nothing.
 * `npm run bench -- profile [get|put|noop|compose] [--quick]`: where a request's CPU goes (profile.ts).
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
import { profileBenchmark } from './profile.js';
import { retwisBenchmark } from './retwis.js';
import { tieringBenchmark } from './tiering.js';
import { wireBenchmark } from './wire.js';
import type { Benchmark } from './harness/benchmark.js';
import { runAll } from './harness/run-all.js';
import { writeSummary } from './harness/summary.js';

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

/** Tools run by name like a benchmark, but not part of `all` (they have no targets). */
const TOOLS: Readonly<Record<string, Benchmark>> = { profile: profileBenchmark };

const args = process.argv.slice(2);
const name = args.find((arg) => !arg.startsWith('--'));
// dist/bench/main.js -> the repository's bench/results, not dist's.
const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
const names = Object.keys(BENCHMARKS);
if (name === 'all') {
  const failures = await runAll({ mainPath: fileURLToPath(import.meta.url), names, quick: args.includes('--quick'), resultsDir });
  console.log(`\nwrote ${writeSummary(resultsDir, names, failures)}${failures.size === 0 ? '' : `; FAILED: ${[...failures.keys()].join(', ')}`}`);
  process.exit(failures.size === 0 ? 0 : 1);
}
if (name === 'summary') {
  console.log(`wrote ${writeSummary(resultsDir, names)}`);
  process.exit(0);
}
const benchmark = name === undefined ? undefined : (BENCHMARKS[name] ?? TOOLS[name]);
if (benchmark === undefined) {
  console.error(`usage: npm run bench -- <${[...names, ...Object.keys(TOOLS)].join('|')}|all|summary> [--quick] [--json]`);
  process.exit(2);
}
await benchmark({ quick: args.includes('--quick'), json: args.includes('--json'), resultsDir, args });
