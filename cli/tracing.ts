/**
 * Tracing in a role process (docs/observability-tracing.md): `startTracing` at the start of each
 * role registers the OpenTelemetry SDK (cli/otel-sdk.ts) when an OTLP endpoint is configured:
 * `lfaas --otlp-endpoint <url> <role>` (which sets the environment below for the role and its
 * children), or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the traces URL), or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL; `/v1/traces` is added). Sampling: a
 * ParentBased(TraceIdRatio) sampler at `LFAAS_TRACE_SAMPLE` (default 0.1; 1 traces every call).
 * Spans carry `service.name` = `lfaas-<role>` and `service.instance.id` = the node.
 *
 * With no endpoint it does nothing: the roles' spans are the API's no-ops (tracing off).
 */
import { SpanKind, endSpan, lfaasTracer, setKvsRootSpans } from '../protocol/index.js';
import { context, trace } from '@opentelemetry/api';
import { registerTracing, sampleRatioOf } from './otel-sdk.js';
import type { StopTracing } from './otel-sdk.js';
import { atLastStop } from './process.js';
import { findClusterFile, readClusterFile } from '../client/index.js';

export interface StartTracingOptions {
  /** The role: `service.name` is `lfaas-<role>`. */
  readonly role: string;
  /** This process's node id or address (`service.instance.id`); default its pid. */
  readonly node?: string;
  /** The OTLP endpoint (default: the environment, see the file's comment). */
  readonly endpoint?: string;
}

/** The OTLP traces endpoint the environment configures, or undefined (tracing off). */
export function tracingEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const traces = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim();
  if (traces !== undefined && traces !== '') return traces;
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim();
  return base === undefined || base === '' ? undefined : base;
}

/**
 * Registers tracing for this role when an endpoint is configured; returns how to flush and stop
 * it (a no-op when off). A role stopped by `stopOnSignals` (cli/process.ts) flushes on its own.
 */
export async function startTracing(options: StartTracingOptions): Promise<StopTracing> {
  const endpoint = options.endpoint ?? tracingEndpoint();
  if (endpoint === undefined) return async () => undefined;
  // A role's own KVS traffic (leases, registry, statistics) starts no trace of its own.
  setKvsRootSpans(false);
  const stop = await registerTracing({ endpoint, serviceName: `lfaas-${options.role}`, instanceId: options.node ?? `${options.role}-${process.pid}`, sample: sampleRatioOf(process.env['LFAAS_TRACE_SAMPLE']) });
  atLastStop(stop);
  return stop;
}

/**
 * `lfaas call --trace`: runs `run` as one traced call (sampled whatever LFAAS_TRACE_SAMPLE says),
 * prints `trace <id>` on stderr before it starts (find it in the dashboard), and flushes the
 * client's spans to the configured endpoint, else to the dashboard the state file of `lfaas up`
 * names (neither: the trace is still carried to the cluster, whose roles record it if they trace).
 */
export async function withTrace<T>(name: string, run: () => Promise<T>): Promise<T> {
  const endpoint = tracingEndpoint() ?? clusterDashboardTraces();
  const stop = await registerTracing({ ...(endpoint === undefined ? {} : { endpoint }), serviceName: 'lfaas-cli', instanceId: `cli-${process.pid}`, sample: 1 });
  const span = lfaasTracer().startSpan(name, { kind: SpanKind.CLIENT });
  process.stderr.write(`trace ${span.spanContext().traceId}\n`);
  try {
    const result = await context.with(trace.setSpan(context.active(), span), run);
    span.end();
    return result;
  } catch (error) {
    endSpan(span, error);
    throw error;
  } finally {
    // A flush that fails (the endpoint is down) costs the spans, not the command's answer.
    await stop().catch((error: unknown) => process.stderr.write(`lfaas: the trace's spans were not exported: ${error instanceof Error ? error.message : String(error)}\n`));
  }
}

/** The traces URL of the dashboard named by the state file `lfaas up` wrote, if one is found. */
function clusterDashboardTraces(): string | undefined {
  const path = findClusterFile();
  if (path === undefined) return undefined;
  try {
    const dashboard = readClusterFile(path).dashboard;
    return dashboard === undefined ? undefined : `${dashboard}/v1/traces`;
  } catch {
    // An unreadable state file: the command itself reports it when it connects.
    return undefined;
  }
}
