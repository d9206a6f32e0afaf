import { describe, expect, it } from 'vitest';
import { logLine, parseSince, shortAddress } from './logs-command.js';

describe('lfaas logs: its arguments and lines', () => {
  it('--since takes a duration back from now or a date, and refuses anything else', () => {
    const now = 10_000_000;
    expect(parseSince('5m', now)).toBe(now - 300_000);
    expect(parseSince('30s', now)).toBe(now - 30_000);
    expect(parseSince('2h', now)).toBe(now - 7_200_000);
    expect(parseSince('1d', now)).toBe(now - 86_400_000);
    expect(parseSince('2026-01-31T12:00:00Z', now)).toBe(Date.parse('2026-01-31T12:00:00Z'));
    expect(() => parseSince('yesterday', now)).toThrow(/--since/);
    expect(() => parseSince('5', now)).toThrow(/--since/);
  });

  it('prints one line per record, its hostile parts escaped', () => {
    const line = logLine({ executor: 'tcp://127.0.0.1:1', seq: 1, timeMs: 0, function: 'alice/f', version: 2, callId: 'alice/c\x1b-1', level: 'info', text: 'hi\nthere\x1b[31m', fields: { user: 'x\u202e' } });
    expect(line).not.toContain('\n');
    expect(line).not.toContain('\x1b');
    expect(line).toContain('alice/f@2');
    expect(line).toContain('hi\\nthere\\x1b[31m');
    expect(line).toContain('1970-01-01T00:00:00.000Z');
  });

  it('shows addresses as host:port', () => {
    expect(shortAddress('tcp://127.0.0.1:7300#abcDEF')).toBe('127.0.0.1:7300');
    expect(shortAddress('tcp://[::1]:7300')).toBe('[::1]:7300');
  });
});
