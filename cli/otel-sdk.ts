/**
 * Turning tracing on in a process (docs/observability-tracing.md): an OpenTelemetry SDK that
 * samples calls and exports their spans as OTLP/HTTP JSON. Library code uses only
 * `@opentelemetry/api` (protocol/trace-context.ts); this file registers the SDK behind it:
 * a `BasicTracerProvider` with a `ParentBased(TraceIdRatio)` sampler (a call sampled where it
 * starts is sampled at every hop; the trace flags travel in the envelopes), a
 * `BatchSpanProcessor` to the OTLP exporter, the W3C propagator, and a context manager on
 * `AsyncLocalStorage` (so a span stays the active one across the awaits of what it covers: the
 * KVS requests a function's `ctx.get` makes carry it to the storage node).
 *
 * Roles call it through cli/tracing.ts; a program of this repository (a test, a bench, the
 * dashboard's demo) may call `startClientTracing`. It lives here, not in the client package, which
 * depends on `@opentelemetry/api` alone: a user of the published client registers an SDK of their
 * own (docs/observability-tracing.md shows how), and the client's spans follow it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, context, propagation, trace } from '@opentelemetry/api';
import type { Context, ContextManager } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ErrorCode, LfaasError } from '../lattices/index.js';

/** The default share of calls traced where they start (`LFAAS_TRACE_SAMPLE`). */
export const DEFAULT_TRACE_SAMPLE = 0.1;

export interface TracingOptions {
  /** OTLP/HTTP traces URL (`http://host:port/v1/traces`), or a base URL (`/v1/traces` is added). None: spans are sampled and carried on, not exported from here. */
  readonly endpoint?: string;
  /** `service.name` of every span. */
  readonly serviceName: string;
  /** `service.instance.id` (a role's node id or address). */
  readonly instanceId?: string;
  /** Share of root calls sampled, 0 to 1 (children follow their parent's decision). */
  readonly sample?: number;
  /** How often batched spans are exported (ms; default 1000). */
  readonly exportDelayMs?: number;
}

/** Stops tracing: flushes the spans not yet exported and unregisters the SDK. */
export type StopTracing = () => Promise<void>;

/** The OTLP traces URL an endpoint stands for: a URL ending in `/v1/traces` as is, a base URL with it added. */
export function otlpTracesUrl(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the OTLP endpoint ${JSON.stringify(endpoint)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the OTLP endpoint must be http(s), not ${url.protocol}`);
  return url.pathname.endsWith('/v1/traces') ? url.toString() : `${url.toString().replace(/\/+$/, '')}/v1/traces`;
}

/** A sampling ratio from text (LFAAS_TRACE_SAMPLE): a number from 0 to 1, else the default. */
export function sampleRatioOf(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return DEFAULT_TRACE_SAMPLE;
  const ratio = Number(text);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `LFAAS_TRACE_SAMPLE must be a number from 0 to 1, not ${JSON.stringify(text)}`);
  return ratio;
}

/** The active context across awaits, on AsyncLocalStorage (the OTel API's ContextManager). */
export class AsyncLocalContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.storage.run(ctx, () => fn.call(thisArg, ...args) as ReturnType<F>);
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = (...args: unknown[]): unknown => this.with(ctx, () => (target as (...inner: unknown[]) => unknown)(...args));
    return run as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.storage.disable();
    return this;
  }
}

let stopActive: StopTracing | undefined;

/**
 * Registers the SDK for this process (see the file's comment) and returns how to stop it. One
 * registration at a time: a second call stops the first.
 */
export async function registerTracing(options: TracingOptions): Promise<StopTracing> {
  if (stopActive !== undefined) await stopActive();
  const sample = options.sample ?? DEFAULT_TRACE_SAMPLE;
  if (!(sample >= 0 && sample <= 1)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the trace sample must be from 0 to 1, not ${sample}`);
  const exporter = options.endpoint === undefined ? undefined : new OTLPTraceExporter({ url: otlpTracesUrl(options.endpoint), timeoutMillis: 5000 });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, ...(options.instanceId === undefined ? {} : { 'service.instance.id': options.instanceId }) }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sample) }),
    spanProcessors: exporter === undefined ? [] : [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportDelayMs ?? 1000, maxQueueSize: 8192, maxExportBatchSize: 512 })],
  });
  const manager = new AsyncLocalContextManager();
  context.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  let stopped = false;
  const stop: StopTracing = async () => {
    if (stopped) return;
    stopped = true;
    if (stopActive === stop) stopActive = undefined;
    try {
      await provider.shutdown();
    } finally {
      trace.disable();
      propagation.disable();
      context.disable();
    }
  };
  stopActive = stop;
  return stop;
}

export interface ClientTracingOptions {
  /** OTLP/HTTP traces URL or base URL (e.g. the dashboard's: `http://127.0.0.1:<port>`). */
  readonly endpoint: string;
  /** Share of calls traced (default 1: every call). */
  readonly sample?: number;
  /** `service.name` (default `lfaas-client`). */
  readonly serviceName?: string;
}

/**
 * Traces this program's calls: each call, DAG call and KVS operation of the SDK is a span, and
 * the cluster's spans (when its roles trace too) join the same trace. Await the returned
 * function before exiting (it flushes).
 *
 * @example
 * ```ts
 * const stopTracing = await startClientTracing({ endpoint: 'http://127.0.0.1:4318' });
 * await faas.call('square', [7]);
 * await stopTracing();
 * ```
 */
export function startClientTracing(options: ClientTracingOptions): Promise<StopTracing> {
  return registerTracing({ endpoint: options.endpoint, serviceName: options.serviceName ?? 'lfaas-client', sample: options.sample ?? 1, instanceId: `${process.pid}` });
}
