/**
 * W3C trace context in envelopes (docs/observability-tracing.md). The envelope's `trace_id`
 * field (envelope.proto field 5; a schedule's `trace_id` too) carries a `traceparent`
 * (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`), optionally followed by one space and
 * a `tracestate` (at most TRACESTATE_BYTES_MAX). Every role and the SDK use it through
 * `@opentelemetry/api` only: with no SDK registered, every span is a no-op and nothing is
 * injected, so tracing off costs a few object allocations per call.
 *
 * The field comes from the network: `extractTraceContext` believes only a well-formed value of
 * bounded length and ignores anything else (never throws, never refuses a frame for it). The
 * field may also hold an older free-form trace id: ignored here too, still echoed on replies.
 *
 * Also the few helpers every role shares: the tracer (`lattice-faas`), a span started from a
 * field, the field of a span, and ending a span with a typed error's code.
 */
import { createHash } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context as otelContext, createTraceState, isSpanContextValid, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span, SpanContext, Tracer, TracerProvider } from '@opentelemetry/api';

/** The tracer every library span is made by. */
export const TRACER_NAME = 'lattice-faas';
/** A `traceparent` is exactly this long (version 00). */
export const TRACEPARENT_LENGTH = 55;
/**
 * A `tracestate` longer than this is dropped (the W3C limit is 512; we keep envelopes small, and
 * the whole field within the 256 characters an async call's execution record keeps).
 */
export const TRACESTATE_BYTES_MAX = 200;
/** The whole field, at most (256): a longer value is ignored. */
export const TRACE_FIELD_MAX = TRACEPARENT_LENGTH + 1 + TRACESTATE_BYTES_MAX;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** Printable ASCII without a space: what a tracestate list member may hold (lax but safe). */
const TRACESTATE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

let tracerProvider: TracerProvider | undefined;
let tracer: Tracer | undefined;

/**
 * The `lattice-faas` tracer (a no-op until an SDK is registered; the API's proxy follows a later
 * registration). Kept per global provider: after `trace.disable()` and a new registration (a test
 * that turns tracing off and on), the new provider's.
 */
export function lfaasTracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (provider !== tracerProvider || tracer === undefined) {
    tracerProvider = provider;
    tracer = provider.getTracer(TRACER_NAME);
  }
  return tracer;
}

/**
 * The span context a trace field carries, or undefined when it carries none we believe: empty,
 * too long, not version 00, all-zero ids, or a bad `tracestate` (then the traceparent alone).
 */
export function parseTraceField(field: string | null | undefined): SpanContext | undefined {
  if (typeof field !== 'string' || field.length < TRACEPARENT_LENGTH || field.length > TRACE_FIELD_MAX) return undefined;
  if (field.length > TRACEPARENT_LENGTH && field[TRACEPARENT_LENGTH] !== ' ') return undefined;
  const match = TRACEPARENT.exec(field.length === TRACEPARENT_LENGTH ? field : field.slice(0, TRACEPARENT_LENGTH));
  if (match === null) return undefined;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  const spanContext: SpanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true };
  if (field.length > TRACEPARENT_LENGTH) {
    const state = field.slice(TRACEPARENT_LENGTH + 1);
    if (TRACESTATE.test(state)) {
      try {
        spanContext.traceState = createTraceState(state);
      } catch {
        // A tracestate the API cannot read: the traceparent alone.
      }
    }
  }
  return spanContext;
}

/** The trace field of a span context: '' when it is not valid (nothing to carry). */
export function formatTraceField(spanContext: SpanContext | undefined): string {
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return '';
  const flags = (spanContext.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00';
  const parent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  const state = spanContext.traceState?.serialize() ?? '';
  return state.length > 0 && state.length <= TRACESTATE_BYTES_MAX && TRACESTATE.test(state) ? `${parent} ${state}` : parent;
}

/** A context whose parent is the remote span the field carries (ROOT_CONTEXT when it carries none). */
export function extractTraceContext(field: string | null | undefined, base: Context = ROOT_CONTEXT): Context {
  if (field === undefined || field === null || field.length === 0) return base;
  const spanContext = parseTraceField(field);
  return spanContext === undefined ? base : trace.setSpanContext(base, spanContext);
}

/** The field to put in an envelope for the span of `ctx` (the active context by default): '' when there is none. */
export function injectTraceContext(ctx: Context = otelContext.active()): string {
  return formatTraceField(trace.getSpanContext(ctx));
}

/** The field carrying `span` on (its children, in other processes, are its children). */
export function traceFieldOf(span: Span): string {
  return formatTraceField(span.spanContext());
}

let kvsRootSpans = true;

/**
 * Whether a KVS operation outside any trace starts one (default true: a program's own `kvs.get`
 * is a trace). Roles turn it off (cli/tracing.ts): their own KVS traffic (registry reads, leases,
 * statistics, results) would be a stream of traces of no call; their operations within a call's
 * trace are still its spans.
 */
export function setKvsRootSpans(on: boolean): void {
  kvsRootSpans = on;
}

/** See {@link setKvsRootSpans}. */
export function kvsStartsTraces(): boolean {
  return kvsRootSpans;
}

/** A span of a role, child of the span `field` carries (a new trace when none: the sampler decides). */
export function startSpanFrom(name: string, field: string | null | undefined, kind: SpanKind = SpanKind.SERVER): Span {
  return lfaasTracer().startSpan(name, { kind }, extractTraceContext(field));
}

/** Sets attributes only when the span records (building them is not free). */
export function setSpanAttributes(span: Span, attributes: () => Attributes): void {
  if (span.isRecording()) span.setAttributes(attributes());
}

/**
 * Ends `span`: OK, or ERROR with the error's code (`lfaas.error.code`; never its message, which
 * may quote user data). `error` may be an LfaasError, a wire error ({ code }), or anything thrown.
 */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined && error !== null) spanFailed(span, error);
  span.end();
}

/** Marks `span` failed with the error's code (see {@link endSpan}) without ending it. */
export function spanFailed(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const code = codeOf(error);
  span.setAttribute('lfaas.error.code', code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

/**
 * What a span records of a key: a short hash (the first 16 hex digits of its SHA-256), never the
 * key itself, which may hold user data. Call it only when the span records.
 */
export function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

function codeOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string' && code.length <= 64) return code;
    if (typeof code === 'number') return String(code);
  }
  return 'INTERNAL';
}

export { SpanKind };
export type { Span, Context };
