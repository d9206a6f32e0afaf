import { describe, expect, it } from 'vitest';
import { sampledLog } from './sampled-log.js';

describe('sampledLog', () => {
  it('writes one line per key per interval and sums what it skipped on the next line', () => {
    let nowMs = 0;
    const lines: string[] = [];
    const log = sampledLog({ write: (line) => lines.push(line), intervalMs: 1000, now: () => nowMs });
    for (let i = 0; i < 10_000; i++) log('peer-a PROTO_MALFORMED', () => `bad frame ${i}`);
    log('peer-b PROTO_MALFORMED', () => 'other peer');
    expect(lines).toEqual(['bad frame 0', 'other peer']);
    nowMs = 1000;
    log('peer-a PROTO_MALFORMED', () => 'again');
    expect(lines.at(-1)).toBe('again (and 9999 more like it in the last 1 s)');
  });

  it('bounds the keys it remembers: beyond, events share one key', () => {
    const lines: string[] = [];
    const log = sampledLog({ write: (line) => lines.push(line), keysMax: 10, now: () => 0 });
    for (let i = 0; i < 1000; i++) log(`peer-${i}`, () => `line ${i}`);
    expect(lines.length).toBeLessThanOrEqual(11);
  });
});
