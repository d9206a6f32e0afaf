/**
 * bench/results/summary.md: every target of every benchmark in one markdown table, built from the
 * result documents (bench/results/<name>.json, see report.ts), with a line per benchmark that
 * failed or has no document. `summaryMarkdown` is pure (documents in, markdown out); `readOutcomes`
 * and `writeSummary` read the documents and write the file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultDocument } from './report.js';

/** The part of a result document the summary reads (a JSON `NaN` comes back as `null`). */
export type SummaryDocument = Pick<ResultDocument, 'name' | 'commit' | 'date' | 'quick' | 'targets'>;

/** One benchmark as the summary sees it: its document (if any), and why its last run failed (if it did). */
export interface BenchmarkOutcome {
  readonly name: string;
  readonly document?: SummaryDocument;
  /** Set when the benchmark's run failed (crashed, overran its time limit, wrote no document). */
  readonly failure?: string;
}

/** The file's name in the results folder. */
export const SUMMARY_FILE = 'summary.md';

/** A table cell: pipes escaped, line breaks flattened. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

/** A measured number as the table shows it (a missing or non-finite value: `n/a`). */
function number(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 1000) return String(Math.round(value));
  return String(Math.round(value * 1000) / 1000);
}

/** `0aa2e101` (or `0aa2e101+dirty`) from a full commit id. */
function shortCommit(commit: string): string {
  const [id = '', ...rest] = commit.split('+');
  return [id.slice(0, 8), ...rest].join('+');
}

/** The markdown of the summary: one table of every target, then the benchmarks that failed or have no document or no targets. */
export function summaryMarkdown(outcomes: readonly BenchmarkOutcome[]): string {
  const lines: string[] = [
    '# Benchmark targets',
    '',
    'Built by `npm run bench -- all [--quick]` (which runs every benchmark first) or `npm run bench -- summary` (from the documents as they are) out of `bench/results/<name>.json`; do not edit by hand. Each benchmark\'s rows, ratios, notes and plot are in its own document and `<name>.png`.',
    '',
  ];
  const withTargets = outcomes.filter((outcome) => (outcome.document?.targets.length ?? 0) > 0);
  const targets = withTargets.flatMap((outcome) => outcome.document!.targets);
  const met = targets.filter((target) => target.met).length;
  lines.push(`${met} of ${targets.length} targets met over ${withTargets.length} benchmarks.`, '');
  if (targets.length > 0) {
    lines.push('| benchmark | target | wanted | measured | peer (its value) | met | commit | date |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const outcome of withTargets) {
      const document = outcome.document!;
      const date = `${document.date}${document.quick ? ' (--quick)' : ''}`;
      for (const target of document.targets) {
        const peer = target.peer === undefined ? '' : `${target.peer.name}: ${number(target.peer.value)}`;
        lines.push(`| ${cell(outcome.name)} | ${cell(target.name)} | ${cell(target.target)} | ${number(target.value)} | ${cell(peer)} | ${target.met ? 'yes' : 'no'} | ${cell(shortCommit(document.commit))} | ${cell(date)} |`);
      }
    }
    lines.push('');
  }
  const problems: string[] = [];
  for (const outcome of outcomes) {
    if (outcome.failure !== undefined) {
      const kept = outcome.document === undefined ? 'it has no document' : `its targets above are from its earlier document of ${outcome.document.date}`;
      problems.push(`- ${outcome.name}: FAILED: ${cell(outcome.failure)}; ${kept}`);
    } else if (outcome.document === undefined) {
      problems.push(`- ${outcome.name}: no document (bench/results/${outcome.name}.json)`);
    }
  }
  if (problems.length > 0) lines.push('## Failed or missing', '', ...problems, '');
  const untargeted = outcomes.filter((outcome) => outcome.document !== undefined && outcome.document.targets.length === 0 && outcome.failure === undefined);
  if (untargeted.length > 0) lines.push(`Benchmarks with a document but no targets: ${untargeted.map((outcome) => outcome.name).join(', ')}.`, '');
  return lines.join('\n');
}

/** Reads the documents of `names` from `resultsDir`; a missing or unreadable one is a benchmark without a document. */
export function readOutcomes(resultsDir: string, names: readonly string[], failures: ReadonlyMap<string, string> = new Map()): BenchmarkOutcome[] {
  return names.map((name) => {
    const failure = failures.get(name);
    const path = join(resultsDir, `${name}.json`);
    let document: SummaryDocument | undefined;
    if (existsSync(path)) {
      try {
        document = JSON.parse(readFileSync(path, 'utf8')) as SummaryDocument;
        if (!Array.isArray(document.targets)) document = { ...document, targets: [] };
      } catch {
        document = undefined;
      }
    }
    return { name, ...(document === undefined ? {} : { document }), ...(failure === undefined ? {} : { failure }) };
  });
}

/** Writes `<resultsDir>/summary.md` from the documents of `names` (and the failures of a run); returns its path. */
export function writeSummary(resultsDir: string, names: readonly string[], failures: ReadonlyMap<string, string> = new Map()): string {
  const path = join(resultsDir, SUMMARY_FILE);
  writeFileSync(path, summaryMarkdown(readOutcomes(resultsDir, names, failures)));
  return path;
}
