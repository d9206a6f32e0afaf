/**
 * Tracing of what a running function asks of the KVS (docs/observability-tracing.md): each
 * `ctx.get`/`put`/`merge`/`delete`/`increment` of a traced run is a span, child of the run's
 * span (its trace field came with the `run` task), with `cache.hit` on reads (answered by this
 * executor's cache without asking the KVS) and the key as a hash only (`lfaas.key.hash`; never
 * a key or a value). The span is the active context while the operation runs, so the KVS
 * client's request to the storage node carries it on when a context manager is registered
 * (cli/tracing.ts registers one).
 *
 * Only runs whose task carries a trace field are wrapped: without an SDK, no run does.
 */
import { context, trace } from '@opentelemetry/api';
import type { AnyLattice } from '../lattices/index.js';
import { SpanKind, endSpan, extractTraceContext, keyHash, lfaasTracer } from '../protocol/index.js';
import type { ExecutorCache } from './cache.js';
import type { FunctionHost } from './host-asks.js';

/** `host` with a span around each KVS operation, children of the span `field` carries. */
export function tracedHost(host: FunctionHost, field: string, cache: Pick<ExecutorCache, 'holds'>): FunctionHost {
  const parent = extractTraceContext(field);
  const span = <T>(name: string, key: string, run: () => Promise<T>, hit?: boolean): Promise<T> => {
    const current = lfaasTracer().startSpan(name, { kind: SpanKind.INTERNAL }, parent);
    if (current.isRecording()) {
      current.setAttribute('lfaas.key.hash', keyHash(key));
      if (hit !== undefined) current.setAttribute('cache.hit', hit);
    }
    let pending: Promise<T>;
    try {
      pending = context.with(trace.setSpan(parent, current), run);
    } catch (error) {
      endSpan(current, error);
      throw error;
    }
    return pending.then(
      (value) => {
        current.end();
        return value;
      },
      (error: unknown) => {
        endSpan(current, error);
        throw error;
      },
    );
  };
  const traced: FunctionHost = {
    ...host,
    get: (key: string): Promise<AnyLattice | undefined> => span('lfaas.ctx.get', key, () => host.get(key), cache.holds(key)),
    put: (key: string, value: unknown): Promise<void> => span('lfaas.ctx.put', key, () => host.put(key, value)),
    merge: (key: string, value: AnyLattice): Promise<void> => span('lfaas.ctx.merge', key, () => host.merge(key, value)),
    delete: (key: string): Promise<void> => span('lfaas.ctx.delete', key, () => host.delete(key)),
  };
  const increment = host.increment;
  if (increment !== undefined) traced.increment = (key: string, amount: number): Promise<number> => span('lfaas.ctx.increment', key, () => increment(key, amount));
  return traced;
}
