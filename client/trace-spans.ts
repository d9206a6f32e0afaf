/**
 * The SDK's spans (docs/observability-tracing.md): a call, a DAG call, an async call's start and
 * a KVS operation each get a client span, child of the caller's active span, and the request
 * carries it (the envelope's trace field, protocol/trace-context.ts). Only `@opentelemetry/api`:
 * with no SDK registered (the default), spans are no-ops and nothing is added to requests; a user
 * who registers an OpenTelemetry SDK (or calls `startClientTracing`) gets one trace per call.
 */
import { context, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span } from '@opentelemetry/api';
import { SpanKind, endSpan, lfaasTracer, setSpanAttributes, traceFieldOf } from '../protocol/index.js';

/**
 * Runs `run` inside a client span named `name`: `run` gets the trace field to put in its request
 * ('' when there is nothing to carry). The span ends when `run` settles, with the error's code on
 * failure. `attributes` is called only when the span records (never user values or keys).
 * With `rootless`, outside a trace `run` runs without a span.
 */
export function traced<T>(name: string, attributes: () => Attributes, run: (trace: string) => Promise<T>, options: { readonly rootless?: boolean } = {}): Promise<T> {
  const parent = context.active();
  // `rootless`: a span only within a trace (a role's own KVS traffic starts none; setKvsRootSpans).
  if (options.rootless === true && trace.getSpan(parent) === undefined) return run('');
  const span = lfaasTracer().startSpan(name, { kind: SpanKind.CLIENT }, parent);
  const field = traceFieldOf(span);
  // No SDK (the default): the span records nothing and carries nothing, so there is nothing to
  // end or pass on; the request goes without a wrapper (a promise and a turn less per operation).
  if (field.length === 0 && !span.isRecording()) return run('');
  return spanned(span, parent, field, attributes, run);
}

async function spanned<T>(span: Span, parent: Context, field: string, attributes: () => Attributes, run: (trace: string) => Promise<T>): Promise<T> {
  setSpanAttributes(span, attributes);
  try {
    const result = field.length === 0 ? await run(field) : await context.with(trace.setSpan(parent, span), () => run(field));
    span.end();
    return result;
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
}
