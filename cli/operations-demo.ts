/**
 * Demo 10 of `lfaas up --demo`: operating the cluster. A DAG call traced from this client through
 * the scheduler, both functions' runs (the trigger carries the trace on) and their KVS reads, then
 * read back from the dashboard's trace store as a waterfall (what the page shows under "Recent
 * traces"); the per-function Prometheus series an executor serves for it; and `/healthz` and
 * `/readyz` of every role.
 *
 * The cluster's roles export their spans to the dashboard (`lfaas up` points them at it); this
 * client registers the OpenTelemetry SDK for the demo's length only, sampling every call.
 */
import { LatticeFaas, dag } from '../client/index.js';
import { exampleFunctionPath } from './example-paths.js';
import { registerTracing } from './otel-sdk.js';
import { SpanKind, lfaasTracer } from '../protocol/index.js';
import { context, trace } from '@opentelemetry/api';
import type { Span as SpanView } from '../dashboard/index.js';

/** Where the demo finds the operations side of the cluster (absent: that part is skipped). */
export interface OperationsEndpoints {
  /** The dashboard's base URL. */
  readonly dashboard?: string;
  /** Every role's metrics server base URL, by role name. */
  readonly metrics?: Readonly<Record<string, string>>;
  /** The admin token (the dashboard's API asks for it). */
  readonly token?: string;
}

const TRACE_WAIT_MS = 15_000;

/** Resolves with whether every result was right. */
export async function operationsDemo(faas: LatticeFaas, endpoints: OperationsEndpoints): Promise<boolean> {
  console.log('\ndemo 10: operations: a traced DAG call in the dashboard, per-function metrics, health\n');
  if (endpoints.dashboard === undefined) {
    console.log('  (no dashboard in this cluster: skipped)');
    return true;
  }
  let ok = true;
  const increment = await faas.register<(x: number) => number, 'increment'>('increment', exampleFunctionPath('increment'));
  const square = await faas.register<(x: number) => number, 'square'>('square', exampleFunctionPath('square'));
  const pipeline = await faas.registerDag(dag('ops-square-of-increment').fn(increment).fn(square, ['increment']).build());

  const stop = await registerTracing({ endpoint: `${endpoints.dashboard}/v1/traces`, serviceName: 'lfaas-demo', instanceId: `demo-${process.pid}`, sample: 1, exportDelayMs: 200 });
  let traceId: string;
  let result: number;
  try {
    const span = lfaasTracer().startSpan('demo 10', { kind: SpanKind.INTERNAL });
    traceId = span.spanContext().traceId;
    try {
      result = await context.with(trace.setSpan(context.active(), span), () => faas.callDag(pipeline, { increment: [6] }));
    } finally {
      span.end();
    }
  } finally {
    await stop();
  }
  console.log(`  square(increment(6)) = ${result}, trace ${traceId}`);
  ok = result === 49 && ok;

  const spans = await traceFromDashboard(endpoints.dashboard, endpoints.token ?? '', traceId);
  const services = new Set(spans.map((span) => span.service));
  const runs = spans.filter((span) => span.name === 'lfaas.run');
  console.log(`  the dashboard holds it: ${spans.length} spans from ${[...services].sort().join(', ')}`);
  for (const line of waterfall(spans).slice(0, 14)) console.log(`    ${line}`);
  ok = services.has('lfaas-demo') && services.has('lfaas-scheduler') && services.has('lfaas-executor') && runs.length >= 2 && ok;

  const metrics = endpoints.metrics ?? {};
  const executors = Object.entries(metrics).filter(([name]) => name.startsWith('executor-'));
  const series: string[] = [];
  for (const [, url] of executors) {
    const text = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) }).then((response) => response.text());
    series.push(...text.split('\n').filter((line) => line.startsWith('lfaas_function_calls_total{') && line.includes(`function="${square.name}"`)));
  }
  console.log(`\n  per-function metrics (an executor's /metrics):`);
  for (const line of series.slice(0, 3)) console.log(`    ${line}`);
  ok = series.length > 0 && ok;

  const health: string[] = [];
  let healthy = 0;
  for (const [name, url] of Object.entries(metrics)) {
    const [live, ready] = await Promise.all([`${url}/healthz`, `${url}/readyz`].map((probe) => fetch(probe, { signal: AbortSignal.timeout(5000) }).then((response) => response.status, () => 0)));
    if (live === 200 && ready === 200) healthy++;
    else health.push(`${name}: healthz ${String(live)}, readyz ${String(ready)}`);
  }
  console.log(`\n  /healthz and /readyz: ${healthy} of ${Object.keys(metrics).length} roles live and ready${health.length === 0 ? '' : `; ${health.join('; ')}`}`);
  ok = healthy === Object.keys(metrics).length && healthy > 0 && ok;
  console.log(`\n  open ${endpoints.dashboard}/#token=<admin token> and find trace ${traceId.slice(0, 8)}... under "Recent traces"`);
  return ok;
}

/** The trace's spans as the dashboard keeps them, once its runs have arrived (bounded wait). */
async function traceFromDashboard(dashboard: string, token: string, traceId: string): Promise<SpanView[]> {
  const deadline = Date.now() + TRACE_WAIT_MS;
  let spans: SpanView[] = [];
  for (let attempt = 0; attempt < 100 && Date.now() < deadline; attempt++) {
    const response = await fetch(`${dashboard}/api/traces/${traceId}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
    if (response.ok) {
      spans = ((await response.json()) as { spans: SpanView[] }).spans;
      // The roles export every second: wait for both runs and the scheduler's span.
      if (spans.filter((span) => span.name === 'lfaas.run').length >= 2 && spans.some((span) => span.service === 'lfaas-scheduler')) return spans;
    } else await response.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return spans;
}

/** One line per span, indented under its parent, with its offset and duration. */
function waterfall(spans: readonly SpanView[]): string[] {
  const start = Math.min(...spans.map((span) => span.startMs));
  const ids = new Set(spans.map((span) => span.spanId));
  const children = new Map<string, SpanView[]>();
  for (const span of spans) {
    const parent = ids.has(span.parentSpanId) ? span.parentSpanId : '';
    children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  const lines: string[] = [];
  const visit = (parent: string, depth: number): void => {
    if (depth > 16) return;
    for (const span of (children.get(parent) ?? []).sort((a, b) => a.startMs - b.startMs)) {
      lines.push(`${'  '.repeat(depth)}${span.name.padEnd(Math.max(1, 24 - 2 * depth))} ${span.service.padEnd(16)} +${(span.startMs - start).toFixed(2)} ms  ${(span.endMs - span.startMs).toFixed(2)} ms`);
      visit(span.spanId, depth + 1);
    }
  };
  visit('', 0);
  return lines;
}
