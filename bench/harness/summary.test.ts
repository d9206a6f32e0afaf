import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readOutcomes, summaryMarkdown, writeSummary } from './summary.js';
import type { SummaryDocument } from './summary.js';

const kvs: SummaryDocument = {
  name: 'kvs',
  commit: '0aa2e1013d6c4bd1b0a3a4d4f9e1c2b3a4d5e6f7',
  date: '2026-11-22T23:55:07.870Z',
  quick: false,
  targets: [
    { name: 'GET 8 B, 50 in flight: throughput ours / Redis', target: '>= 1.0', value: 1.234, met: true, peer: { name: 'redis GET/s', value: 81234.4 } },
    { name: 'PUT 8 B, 1 client: p50 ours / Redis', target: '<= 1.5', value: 1.9, met: false },
  ],
};
const compose: SummaryDocument = {
  name: 'compose',
  commit: 'abcdef0123456789abcdef0123456789abcdef01+dirty',
  date: '2026-12-07T03:04:01.194Z',
  quick: true,
  targets: [{ name: 'a | b', target: '<= 0.35', value: Number.NaN, met: false }],
};

/** The table rows of a summary (lines that start with a pipe, the header and rule left out). */
function tableRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| '))
    .slice(2)
    .map((line) => line.slice(2, -2).split(/ (?<!\\)\| /));
}

describe('summaryMarkdown', () => {
  it('lists every target of every document with its wanted and measured value, peer, met, commit and date', () => {
    const markdown = summaryMarkdown([{ name: 'kvs', document: kvs }, { name: 'compose', document: compose }]);
    const rows = tableRows(markdown);
    expect(rows).toEqual([
      ['kvs', 'GET 8 B, 50 in flight: throughput ours / Redis', '>= 1.0', '1.234', 'redis GET/s: 81234', 'yes', '0aa2e101', '2026-11-22T23:55:07.870Z'],
      ['kvs', 'PUT 8 B, 1 client: p50 ours / Redis', '<= 1.5', '1.9', '', 'no', '0aa2e101', '2026-11-22T23:55:07.870Z'],
      ['compose', 'a \\| b', '<= 0.35', 'n/a', '', 'no', 'abcdef01+dirty', '2026-12-07T03:04:01.194Z (--quick)'],
    ]);
    expect(markdown).toContain('1 of 3 targets met over 2 benchmarks.');
    expect(markdown).not.toContain('Failed or missing');
  });

  it('has a line per benchmark that failed or has no document, and names those without targets', () => {
    const markdown = summaryMarkdown([
      { name: 'kvs', document: kvs, failure: 'exited with code 1' },
      { name: 'wire', failure: 'overran its time limit of 6 min and was killed' },
      { name: 'lattice' },
      { name: 'counter', document: { ...kvs, name: 'counter', targets: [] } },
    ]);
    expect(tableRows(markdown)).toHaveLength(2);
    expect(markdown).toContain('- kvs: FAILED: exited with code 1; its targets above are from its earlier document of 2026-11-22T23:55:07.870Z');
    expect(markdown).toContain('- wire: FAILED: overran its time limit of 6 min and was killed; it has no document');
    expect(markdown).toContain('- lattice: no document (bench/results/lattice.json)');
    expect(markdown).toContain('Benchmarks with a document but no targets: counter.');
  });

  it('says so when there is no target at all', () => {
    const markdown = summaryMarkdown([{ name: 'lattice' }]);
    expect(markdown).toContain('0 of 0 targets met over 0 benchmarks.');
    expect(tableRows(markdown)).toEqual([]);
  });
});

describe('readOutcomes and writeSummary', () => {
  it('reads the documents of a results folder (NaN written as null), a missing or broken one as no document', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-summary-'));
    try {
      writeFileSync(join(dir, 'kvs.json'), JSON.stringify(kvs));
      writeFileSync(join(dir, 'compose.json'), JSON.stringify(compose));
      writeFileSync(join(dir, 'wire.json'), '{ not json');
      const outcomes = readOutcomes(dir, ['kvs', 'compose', 'wire', 'lattice'], new Map([['wire', 'exited with code 1']]));
      expect(outcomes.map((outcome) => [outcome.name, outcome.document !== undefined, outcome.failure])).toEqual([
        ['kvs', true, undefined],
        ['compose', true, undefined],
        ['wire', false, 'exited with code 1'],
        ['lattice', false, undefined],
      ]);
      const path = writeSummary(dir, ['kvs', 'compose', 'wire', 'lattice'], new Map([['wire', 'exited with code 1']]));
      const written = readFileSync(path, 'utf8');
      expect(written).toBe(summaryMarkdown(outcomes));
      expect(tableRows(written)[2]).toContain('n/a');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
