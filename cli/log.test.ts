import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { makeRoleLogger, roleLogLevel, traceIdOf } from './log.js';

/** A destination collecting the records written. */
function collector(): { stream: Writable; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { stream, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('role logs', () => {
  it('writes JSON records with role, pid, node and level, and censors tokens, keys and values', () => {
    const out = collector();
    const log = makeRoleLogger('scheduler', out.stream, 'info').child({ node: 'tcp://127.0.0.1:7200' });
    log.info({ code: 'OK', token: 'lfaas1.secret', key: 'alice/private', request: { value: 'user data', args: [1, 2], size: 3 } }, 'call answered');
    log.debug('not at info');
    const [record] = out.records();
    expect(out.records()).toHaveLength(1);
    expect(record).toMatchObject({ level: 30, role: 'scheduler', pid: process.pid, node: 'tcp://127.0.0.1:7200', code: 'OK', msg: 'call answered' });
    expect(record!['token']).toBe('[redacted]');
    expect(record!['key']).toBe('[redacted]');
    expect(record!['request']).toEqual({ value: '[redacted]', args: '[redacted]', size: 3 });
    expect(JSON.stringify(record)).not.toMatch(/secret|private|user data/);
  });

  it('takes its level from LFAAS_LOG_LEVEL (default info; unknown names ignored)', () => {
    expect(roleLogLevel({})).toBe('info');
    expect(roleLogLevel({ LFAAS_LOG_LEVEL: 'WARN' })).toBe('warn');
    expect(roleLogLevel({ LFAAS_LOG_LEVEL: 'loud' })).toBe('info');
    const out = collector();
    const log = makeRoleLogger('executor', out.stream, roleLogLevel({ LFAAS_LOG_LEVEL: 'warn' }));
    log.info('hidden');
    log.warn({ code: 'PROTO_MALFORMED', peer: 'p', skipped: 3 }, 'frame rejected');
    expect(out.records()).toEqual([expect.objectContaining({ level: 40, code: 'PROTO_MALFORMED', peer: 'p', skipped: 3, msg: 'frame rejected' })]);
  });

  it('reads the trace id of a W3C traceparent', () => {
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf('abc')).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
    expect(traceIdOf('')).toBeUndefined();
  });
});
