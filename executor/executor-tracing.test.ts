/**
 * The executor machine's spans (docs/observability-tracing.md), with an SDK registered in this
 * test file and spans kept in memory: a function run is a span, child of the schedule's trace
 * context; its trigger carries its context to the next function's executor, whose run is its
 * child; a failed run ends ERROR with its code; a hostile trace field is ignored.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, parseTraceField } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import { ExecutorNode } from './executor-node.js';

const SELF = 'tcp://127.0.0.1:7400';
const OTHER = 'tcp://127.0.0.1:7401';
const CALLER = 'tcp://127.0.0.1:7402';
const CLIENT_TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

const message = (envelope: PbTypes.IEnvelope): { kind: 'message'; envelope: PbTypes.Envelope } => ({ kind: 'message', envelope: decodeEnvelope(encodeEnvelope(envelope)) });
const tasks = (effects: readonly Effect[]): Extract<Effect, { kind: 'task' }>[] => effects.filter((effect): effect is Extract<Effect, { kind: 'task' }> => effect.kind === 'task');
const runTask = (effects: readonly Effect[]): Extract<Effect, { kind: 'task' }> => tasks(effects).find((effect) => (effect.task as { op: string }).op === 'run')!;
const sends = (effects: readonly Effect[]): Extract<Effect, { kind: 'send' }>[] => effects.filter((effect): effect is Extract<Effect, { kind: 'send' }> => effect.kind === 'send');

const dagSchedule = (runId: string, traceId: string): PbTypes.ISchedule => ({
  runId,
  dag: 'pipeline',
  functions: [
    { name: 'first', version: 1, executor: SELF, successors: ['second'] },
    { name: 'second', version: 1, executor: OTHER, parents: 1, parentNames: ['first'] },
  ],
  timeoutMs: 5000,
  replyTo: CALLER,
  replyRequestId: 9,
  traceId,
});

describe('the executor machine traces its runs', () => {
  beforeAll(() => {
    trace.setGlobalTracerProvider(provider);
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());

  it('a run is a child of the schedule\'s context, and its trigger carries its own context to the next function', () => {
    const first = new ExecutorNode({ address: SELF });
    const second = new ExecutorNode({ address: OTHER });
    const schedule = dagSchedule('run-1', CLIENT_TRACE);
    const started = first.handle(message({ schedule }), 0);
    second.handle(message({ schedule }), 0);
    const run = runTask(started);
    // The task carries the run span's context to the host (its KVS operations are its children).
    const carried = parseTraceField((run.task as { trace?: string }).trace);
    expect(carried?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    const done = first.handle({ kind: 'taskDone', token: run.token, result: { value: Uint8Array.of(0x05), cut: [], cold: true } }, 1);
    const trigger = sends(done).find((effect) => effect.envelope.trigger)!;
    expect(trigger.to).toBe(OTHER);
    const triggerContext = parseTraceField(trigger.envelope.traceId);
    expect(triggerContext).toMatchObject({ traceId: carried!.traceId, spanId: carried!.spanId });
    const [firstSpan] = exporter.getFinishedSpans();
    expect(firstSpan?.name).toBe('lfaas.run');
    expect(firstSpan?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(firstSpan?.attributes).toMatchObject({ 'lfaas.function': 'first', 'lfaas.version': 1, 'lfaas.call.id': 'run-1', 'lfaas.dag': 'pipeline', 'lfaas.cold': true });
    // The next executor: the trigger's context is its run's parent.
    const next = runTask(second.handle(message({ trigger: trigger.envelope.trigger!, traceId: trigger.envelope.traceId ?? '', sender: SELF }), 2));
    second.handle({ kind: 'taskDone', token: next.token, result: { value: Uint8Array.of(0x06), cut: [] } }, 3);
    const secondSpan = exporter.getFinishedSpans().find((span) => span.attributes['lfaas.function'] === 'second');
    expect(secondSpan?.spanContext().traceId).toBe(carried!.traceId);
    expect(secondSpan?.parentSpanContext?.spanId).toBe(firstSpan!.spanContext().spanId);
  });

  it('a failed run ends ERROR with its code, and its error trigger still carries the context', () => {
    const first = new ExecutorNode({ address: SELF });
    const run = runTask(first.handle(message({ schedule: dagSchedule('run-2', CLIENT_TRACE) }), 0));
    const done = first.handle({ kind: 'taskDone', token: run.token, error: new LfaasError(ErrorCode.EXEC_USER_ERROR, 'secret user text') }, 1);
    expect(parseTraceField(sends(done).find((effect) => effect.envelope.trigger)?.envelope.traceId)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    const [span] = exporter.getFinishedSpans();
    expect(span?.status.code).toBe(2);
    expect(span?.attributes['lfaas.error.code']).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(JSON.stringify(span?.attributes)).not.toContain('secret');
  });

  it('ignores a hostile trace field: the run starts a trace of its own', () => {
    const first = new ExecutorNode({ address: SELF });
    const run = runTask(first.handle(message({ schedule: dagSchedule('run-3', `00-${'g'.repeat(32)}-00f067aa0ba902b7-01 ${'x'.repeat(500)}`) }), 0));
    first.handle({ kind: 'taskDone', token: run.token, result: { value: Uint8Array.of(0x05), cut: [] } }, 1);
    const [span] = exporter.getFinishedSpans();
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.spanContext().traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});
