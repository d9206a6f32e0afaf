/**
 * The result document of a benchmark: printed as a table, written as JSON to
 * bench/results/<name>.json with a plot beside it, and printed as the last line with --json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitCommit, machineInfo } from './machine-info.js';
import type { MachineInfo } from './machine-info.js';
import { renderPlot } from './plot.js';
import { round } from './stats.js';

export type Row = Record<string, string | number>;

export interface Target {
  readonly name: string;
  readonly target: string;
  readonly value: number;
  readonly met: boolean;
  /**
   * When the target compares us with another system (Redis, the raw echo, Restate, a baseline of
   * ours): that system and its own measured value of the quantity (e.g. Redis's operations per
   * second where `value` is the ratio ours / Redis).
   */
  readonly peer?: { readonly name: string; readonly value: number };
}

export interface ResultDocument {
  readonly name: string;
  readonly machine: MachineInfo;
  readonly node: string;
  readonly commit: string;
  readonly date: string;
  readonly quick: boolean;
  readonly rows: readonly Row[];
  readonly ratios: Readonly<Record<string, number>>;
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
}

/** Formats rows as an aligned plain-text table. */
export function formatTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)';
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: string | number | undefined): string => (value === undefined ? '' : typeof value === 'number' ? String(round(value)) : value);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]): string => values.map((value, i) => value.padEnd(widths[i] ?? 0)).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((row) => line(columns.map((c) => cell(row[c]))))].join('\n');
}

export interface PlotSpec {
  /** A vega-lite spec without data; the rows are put in as `data.values`. */
  readonly spec: Record<string, unknown>;
  readonly rows: readonly Row[];
}

/**
 * The plot of sequential latencies: a point per case (`label(row)`: its test) at p50 and at p99,
 * on a log scale.
 */
export function latencyPlot(title: string, rows: readonly Row[], label: (row: Row) => string, height = 240): PlotSpec {
  return {
    rows: rows.flatMap((row) => [
      { ...row, case: `${label(row)}: ${String(row['test'])}`, quantile: 'p50', ms: row['p50Ms']! },
      { ...row, case: `${label(row)}: ${String(row['test'])}`, quantile: 'p99', ms: row['p99Ms']! },
    ]),
    spec: {
      title,
      width: 460,
      height,
      mark: { type: 'point', filled: true, size: 90 },
      encoding: {
        y: { field: 'case', type: 'nominal', title: null, axis: { labelLimit: 420 } },
        x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms)' },
        color: { field: 'quantile', type: 'nominal' },
        shape: { field: 'quantile', type: 'nominal' },
      },
    },
  };
}

/** Writes the document and the plot, prints the table, and the JSON line with --json. */
export async function publish(
  name: string,
  options: { quick: boolean; json: boolean; resultsDir: string },
  result: { rows: readonly Row[]; ratios: Record<string, number>; targets: readonly Target[]; notes?: readonly string[]; plot: PlotSpec },
): Promise<ResultDocument> {
  const document: ResultDocument = {
    name,
    machine: machineInfo(),
    node: process.version,
    commit: gitCommit(),
    date: new Date().toISOString(),
    quick: options.quick,
    rows: result.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v]))),
    ratios: Object.fromEntries(Object.entries(result.ratios).map(([k, v]) => [k, round(v)])),
    targets: result.targets.map((t) => ({ ...t, value: round(t.value), ...(t.peer === undefined ? {} : { peer: { name: t.peer.name, value: round(t.peer.value) } }) })),
    notes: result.notes ?? [],
  };
  console.log(formatTable(document.rows));
  console.log('');
  if (document.targets.length > 0) console.log(formatTable(document.targets.map((t) => ({ target: t.name, wanted: t.target, measured: t.value, met: t.met ? 'yes' : 'NO' }))));
  for (const note of document.notes) console.log(`note: ${note}`);
  mkdirSync(options.resultsDir, { recursive: true });
  writeFileSync(join(options.resultsDir, `${name}.json`), JSON.stringify(document, null, 2) + '\n');
  const { svg, png } = await renderPlot({ ...result.plot.spec, data: { values: result.plot.rows } });
  writeFileSync(join(options.resultsDir, `${name}.svg`), svg);
  writeFileSync(join(options.resultsDir, `${name}.png`), png);
  console.log(`\nwrote ${join(options.resultsDir, name)}.{json,svg,png}`);
  if (options.json) console.log(JSON.stringify(document));
  return document;
}
