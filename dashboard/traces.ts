/**
 * The dashboard's trace receiver: spans in the OTLP/HTTP JSON encoding of an
 * ExportTraceServiceRequest (what @opentelemetry/exporter-trace-otlp-http posts to `/v1/traces`),
 * checked field by field and kept, grouped by trace id, for the page's "recent traces" panel.
 *
 * - Parsing (`parseOtlpTraces`): `resourceSpans[].scopeSpans[].spans[]`, the resource's
 *   `service.name`; ids in hex (trace 32 digits, span 16), times in nanoseconds since the epoch
 *   (a decimal string or a number), the status code. Anything not of that shape is a typed
 *   PROTO_MALFORMED error (the server answers 400); names and attributes are cut to bounded
 *   lengths, and at most SPANS_PER_REQUEST_MAX spans are read from one request.
 * - Keeping (`TraceStore`): the most recent `tracesMax` traces (200) and `bytesMax` bytes (an
 *   estimate of what they hold, 4 MiB) at most; a trace holds SPANS_PER_TRACE_MAX spans at most;
 *   the trace touched least recently goes first.
 *
 * Attribute values are kept as short strings: the roles put names and numbers there (function,
 * key names, sizes), never stored values.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';

export const SPANS_PER_REQUEST_MAX = 10_000;
export const SPANS_PER_TRACE_MAX = 1000;
const NAME_LENGTH_MAX = 200;
const ATTRIBUTES_MAX = 16;
const ATTRIBUTE_LENGTH_MAX = 200;
const RESOURCES_MAX = 1000;
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;

/** One span as the dashboard keeps it (times in ms since the epoch, fractional). */
export interface Span {
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  readonly service: string;
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly status: number;
  readonly attributes: Readonly<Record<string, string>>;
}

/** A trace for the page: its spans, earliest first. */
export interface TraceView {
  readonly traceId: string;
  /** The root span's name (else the earliest span's). */
  readonly name: string;
  readonly service: string;
  readonly startMs: number;
  readonly durationMs: number;
  readonly spanCount: number;
  readonly errors: number;
  readonly spans: readonly Span[];
}

function malformed(message: string): LfaasError {
  return new LfaasError(ErrorCode.PROTO_MALFORMED, `OTLP traces: ${message}`);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function listOf(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw malformed(`${what} must be an array`);
  return value;
}

/** A bounded printable string (undefined and null: ""). */
function textOf(value: unknown, what: string, max = NAME_LENGTH_MAX): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw malformed(`${what} must be a string`);
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

/** Nanoseconds since the epoch (a decimal string or a number) as ms. */
function nanosToMs(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value / 1e6;
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) return Number(BigInt(value) / 1000n) / 1000;
  throw malformed(`${what} must be nanoseconds since the epoch (a decimal string or a number)`);
}

/** An OTLP AnyValue as a short string. */
function anyValueText(value: unknown): string {
  if (!isObject(value)) return '';
  const scalar = value['stringValue'] ?? value['intValue'] ?? value['doubleValue'] ?? value['boolValue'];
  if (typeof scalar === 'string') return scalar.length > ATTRIBUTE_LENGTH_MAX ? `${scalar.slice(0, ATTRIBUTE_LENGTH_MAX - 1)}…` : scalar;
  if (typeof scalar === 'number' || typeof scalar === 'boolean') return String(scalar);
  if (value['arrayValue'] !== undefined) return '[array]';
  if (value['kvlistValue'] !== undefined) return '[map]';
  if (value['bytesValue'] !== undefined) return '[bytes]';
  return '';
}

function attributesOf(value: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  let count = 0;
  for (const item of listOf(value, what)) {
    if (!isObject(item)) throw malformed(`${what}[] must be objects`);
    if (count >= ATTRIBUTES_MAX) continue;
    const key = textOf(item['key'], `${what}[].key`, 100);
    if (key === '' || key === '__proto__') continue;
    out[key] = anyValueText(item['value']);
    count++;
  }
  return out;
}

function spanOf(raw: unknown, service: string): Span {
  if (!isObject(raw)) throw malformed('a span must be an object');
  const traceId = typeof raw['traceId'] === 'string' ? raw['traceId'].toLowerCase() : '';
  const spanId = typeof raw['spanId'] === 'string' ? raw['spanId'].toLowerCase() : '';
  if (!TRACE_ID.test(traceId)) throw malformed('a span\'s traceId must be 32 hex digits');
  if (!SPAN_ID.test(spanId)) throw malformed('a span\'s spanId must be 16 hex digits');
  const parent = raw['parentSpanId'] === undefined || raw['parentSpanId'] === null ? '' : raw['parentSpanId'];
  if (typeof parent !== 'string' || (parent !== '' && !SPAN_ID.test(parent.toLowerCase()))) throw malformed('a span\'s parentSpanId must be "" or 16 hex digits');
  const startMs = nanosToMs(raw['startTimeUnixNano'], 'startTimeUnixNano');
  const endMs = nanosToMs(raw['endTimeUnixNano'] ?? raw['startTimeUnixNano'], 'endTimeUnixNano');
  const status = isObject(raw['status']) ? raw['status']['code'] : undefined;
  const code = status === undefined ? 0 : typeof status === 'number' && Number.isInteger(status) && status >= 0 && status <= 2 ? status : status === 'STATUS_CODE_ERROR' ? 2 : status === 'STATUS_CODE_OK' ? 1 : 0;
  return { traceId, spanId, parentSpanId: parent.toLowerCase(), service, name: textOf(raw['name'], 'a span\'s name'), startMs, endMs: Math.max(startMs, endMs), status: code, attributes: attributesOf(raw['attributes'], 'attributes') };
}

/** The spans of an ExportTraceServiceRequest in OTLP JSON; throws PROTO_MALFORMED when it is not one. */
export function parseOtlpTraces(body: unknown): Span[] {
  if (!isObject(body)) throw malformed('the body must be a JSON object');
  const spans: Span[] = [];
  const resources = listOf(body['resourceSpans'], 'resourceSpans');
  if (resources.length > RESOURCES_MAX) throw malformed(`more than ${RESOURCES_MAX} resourceSpans`);
  for (const resourceSpans of resources) {
    if (!isObject(resourceSpans)) throw malformed('resourceSpans[] must be objects');
    const resource = resourceSpans['resource'];
    const service = isObject(resource) ? (attributesOf(resource['attributes'], 'resource.attributes')['service.name'] ?? '') : '';
    for (const scopeSpans of listOf(resourceSpans['scopeSpans'], 'scopeSpans')) {
      if (!isObject(scopeSpans)) throw malformed('scopeSpans[] must be objects');
      for (const raw of listOf(scopeSpans['spans'], 'spans')) {
        if (spans.length >= SPANS_PER_REQUEST_MAX) throw malformed(`more than ${SPANS_PER_REQUEST_MAX} spans in one request`);
        spans.push(spanOf(raw, service || 'unknown'));
      }
    }
  }
  return spans;
}

interface Kept {
  readonly spans: Span[];
  bytes: number;
}

/** An estimate of what a span takes in memory. */
function spanBytes(span: Span): number {
  let bytes = 200 + span.name.length * 2 + span.service.length * 2;
  for (const [key, value] of Object.entries(span.attributes)) bytes += 40 + (key.length + value.length) * 2;
  return bytes;
}

/** The recent traces, bounded in count and bytes; see the file comment. */
export class TraceStore {
  readonly counters = { spans: 0, spansDropped: 0, tracesEvicted: 0 };
  /** Insertion order is recency: a trace touched again moves to the end. */
  private readonly traces = new Map<string, Kept>();
  private bytes = 0;

  constructor(
    private readonly tracesMax = 200,
    private readonly bytesMax = 4 * 1024 * 1024,
  ) {}

  get size(): number {
    return this.traces.size;
  }

  add(spans: readonly Span[]): void {
    for (const span of spans) {
      let kept = this.traces.get(span.traceId);
      if (kept !== undefined) this.traces.delete(span.traceId);
      else kept = { spans: [], bytes: 0 };
      this.traces.set(span.traceId, kept);
      if (kept.spans.length >= SPANS_PER_TRACE_MAX) {
        this.counters.spansDropped++;
        continue;
      }
      const bytes = spanBytes(span);
      kept.spans.push(span);
      kept.bytes += bytes;
      this.bytes += bytes;
      this.counters.spans++;
    }
    for (const [traceId, kept] of this.traces) {
      if (this.traces.size <= this.tracesMax && this.bytes <= this.bytesMax) break;
      // Never the only trace left (one trace is bounded by SPANS_PER_TRACE_MAX).
      if (this.traces.size === 1) break;
      this.traces.delete(traceId);
      this.bytes -= kept.bytes;
      this.counters.tracesEvicted++;
    }
  }

  /** Estimated bytes held. */
  get bytesHeld(): number {
    return this.bytes;
  }

  /** The most recent `limit` traces, newest first. */
  recent(limit = 50): TraceView[] {
    const out: TraceView[] = [];
    const ids = [...this.traces.keys()].reverse().slice(0, Math.max(0, limit));
    for (const traceId of ids) {
      const kept = this.traces.get(traceId)!;
      const spans = [...kept.spans].sort((a, b) => a.startMs - b.startMs);
      const ids = new Set(spans.map((span) => span.spanId));
      const root = spans.find((span) => span.parentSpanId === '' || !ids.has(span.parentSpanId)) ?? spans[0]!;
      const startMs = spans[0]!.startMs;
      const endMs = Math.max(...spans.map((span) => span.endMs));
      out.push({ traceId, name: root.name, service: root.service, startMs, durationMs: endMs - startMs, spanCount: spans.length, errors: spans.filter((span) => span.status === 2).length, spans });
    }
    return out;
  }
}
