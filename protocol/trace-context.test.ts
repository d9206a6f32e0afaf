/**
 * The trace field codec (trace-context.ts): a W3C traceparent (and bounded tracestate) round
 * trips, and garbage from the network is ignored, never thrown on.
 */
import fc from 'fast-check';
import { ROOT_CONTEXT, TraceFlags, createTraceState, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { TRACE_FIELD_MAX, extractTraceContext, formatTraceField, injectTraceContext, parseTraceField } from './trace-context.js';

const hex = (length: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-f]{${length}}$`)).filter((text) => /[1-9a-f]/.test(text));
const spanContexts = fc.record({ traceId: hex(32), spanId: hex(16), sampled: fc.boolean(), state: fc.option(fc.constantFrom('vendor=abc', 'a=1,b=2', 'congo=t61rcWkgMzE'), { nil: undefined }) });

describe('trace context codec', () => {
  it('round-trips every valid span context', () => {
    fc.assert(
      fc.property(spanContexts, ({ traceId, spanId, sampled, state }) => {
        const field = formatTraceField({ traceId, spanId, traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, ...(state === undefined ? {} : { traceState: createTraceState(state) }) });
        expect(field.startsWith(`00-${traceId}-${spanId}-${sampled ? '01' : '00'}`)).toBe(true);
        const parsed = parseTraceField(field)!;
        expect(parsed).toMatchObject({ traceId, spanId, traceFlags: sampled ? 1 : 0, isRemote: true });
        expect(parsed.traceState?.serialize()).toBe(state);
        expect(formatTraceField(parsed)).toBe(field);
      }),
    );
  });

  it('reads the W3C example', () => {
    const parsed = parseTraceField('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(parsed).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 });
  });

  it('ignores malformed, zero, oversized and foreign values', () => {
    for (const bad of [
      '',
      't-1',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7',
      '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`,
      `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ${'a=b,'.repeat(200)}`,
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x',
    ]) {
      expect(parseTraceField(bad)).toBeUndefined();
      expect(trace.getSpanContext(extractTraceContext(bad))).toBeUndefined();
    }
    expect(parseTraceField(undefined)).toBeUndefined();
    expect(parseTraceField(null)).toBeUndefined();
  });

  it('keeps the traceparent when the tracestate is bad', () => {
    const parsed = parseTraceField('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 \u0001bad');
    expect(parsed?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(parsed?.traceState).toBeUndefined();
  });

  it('never throws on garbage and believes nothing longer than the bound', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 80 }), spanContexts.chain(({ traceId, spanId }) => fc.string({ maxLength: 300 }).map((tail) => `00-${traceId}-${spanId}-01${tail}`))), (text) => {
        const parsed = parseTraceField(text);
        if (text.length > TRACE_FIELD_MAX) expect(parsed).toBeUndefined();
        extractTraceContext(text);
        if (parsed !== undefined) expect(parseTraceField(formatTraceField(parsed))?.traceId).toBe(parsed.traceId);
      }),
    );
  });

  it('injects nothing without a valid span (no SDK: zero cost)', () => {
    expect(injectTraceContext()).toBe('');
    expect(injectTraceContext(ROOT_CONTEXT)).toBe('');
    expect(formatTraceField(trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 }).spanContext())).toBe('');
  });
});
