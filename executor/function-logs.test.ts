import { describe, expect, it } from 'vitest';
import { FunctionLogBuffer, boundText, nameMatches } from './function-logs.js';

const record = (n: number, extra: Partial<{ function: string; callId: string; text: string; fields: string; timeMs: number }> = {}) => ({
  timeMs: extra.timeMs ?? 1000 + n,
  function: extra.function ?? 'alice/f',
  version: 1,
  callId: extra.callId ?? `alice/c-${n}`,
  level: 'info',
  text: extra.text ?? `line ${n}`,
  ...(extra.fields === undefined ? {} : { fields: extra.fields }),
});

describe('function log buffer', () => {
  it('keeps records in order with increasing sequence numbers, and answers by name, call, time and cursor', () => {
    const logs = new FunctionLogBuffer();
    for (let n = 0; n < 10; n++) logs.add(record(n, { function: n % 2 === 0 ? 'alice/f' : 'bob/g' }));
    expect(logs.query({}).records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(logs.query({ name: 'alice/' }).records.map((r) => r.text)).toEqual(['line 0', 'line 2', 'line 4', 'line 6', 'line 8']);
    expect(logs.query({ name: 'bob/g' }).records).toHaveLength(5);
    expect(logs.query({ name: 'bob/' + 'g2' }).records).toHaveLength(0);
    expect(logs.query({ callId: 'alice/c-4' }).records.map((r) => r.text)).toEqual(['line 4']);
    expect(logs.query({ sinceMs: 1007 }).records.map((r) => r.seq)).toEqual([8, 9, 10]);
    expect(logs.query({ afterSeq: 7 }).records.map((r) => r.seq)).toEqual([8, 9, 10]);
    expect(logs.query({ afterSeq: 10 }).records).toEqual([]);
    expect(logs.query({ afterSeq: 1_000_000 }).records).toEqual([]);
  });

  it('pages: a limit truncates, and the next page starts after the last record', () => {
    const logs = new FunctionLogBuffer();
    for (let n = 0; n < 25; n++) logs.add(record(n));
    const first = logs.query({ limit: 10 });
    expect(first.truncated).toBe(true);
    expect(first.records).toHaveLength(10);
    const second = logs.query({ limit: 10, afterSeq: first.records.at(-1)!.seq });
    expect(second.records[0]!.seq).toBe(11);
    const last = logs.query({ limit: 10, afterSeq: 20 });
    expect(last.truncated).toBe(false);
    expect(last.records.map((r) => r.seq)).toEqual([21, 22, 23, 24, 25]);
  });

  it('drops the oldest records beyond its record bound, and the cursor still works', () => {
    const logs = new FunctionLogBuffer({ recordsMax: 100 });
    for (let n = 0; n < 5000; n++) logs.add(record(n));
    expect(logs.size).toBe(100);
    const kept = logs.query({ limit: 1000 }).records;
    expect(kept[0]!.seq).toBe(4901);
    expect(kept.at(-1)!.seq).toBe(5000);
    // A cursor older than what is kept reads from the oldest kept.
    expect(logs.query({ afterSeq: 3, limit: 1 }).records[0]!.seq).toBe(4901);
    expect(logs.query({ afterSeq: 4950 }).records).toHaveLength(50);
    expect(logs.counters.dropped).toBe(4900);
  });

  it('drops the oldest records beyond its byte bound, and cuts long text and fields', () => {
    const logs = new FunctionLogBuffer({ bytesMax: 64 * 1024, textCharsMax: 1000, fieldsCharsMax: 100 });
    for (let n = 0; n < 1000; n++) logs.add(record(n, { text: 'x'.repeat(100_000), fields: JSON.stringify({ big: 'y'.repeat(10_000) }) }));
    expect(logs.byteCount).toBeLessThanOrEqual(64 * 1024);
    const kept = logs.query({ limit: 1000 }).records;
    expect(kept.length).toBeGreaterThan(0);
    for (const r of kept) {
      expect(r.text.length).toBeLessThan(1100);
      expect(r.text).toContain('(100000 characters)');
      expect(r.fields.length).toBeLessThan(200);
    }
    expect(logs.counters.cut).toBe(1000);
  });

  it('makes text well-formed Unicode and never splits a surrogate pair', () => {
    expect(boundText('a\uD800b', 100)).toBe('a\uFFFDb');
    const cut = boundText('ab😀😀😀', 3);
    expect(cut.startsWith('ab')).toBe(true);
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(cut).not.toMatch(/(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
  });

  it('matches names: everything, a namespace, one function', () => {
    expect(nameMatches('', 'x')).toBe(true);
    expect(nameMatches('alice/', 'alice/f')).toBe(true);
    expect(nameMatches('alice/', 'alicex/f')).toBe(false);
    expect(nameMatches('alice/f', 'alice/f')).toBe(true);
    expect(nameMatches('alice/f', 'alice/fg')).toBe(false);
  });
});
