import { describe, expect, it } from 'vitest';
import { FunctionCallMetrics, ownerLabel } from './function-call-metrics.js';
import type { HistogramSample, ScalarSample } from './metrics-server.js';

const NAMES = { calls: 'lfaas_test_calls_total', callsHelp: 'Calls.', duration: 'lfaas_test_duration_seconds', durationHelp: 'Durations.' };

describe('FunctionCallMetrics', () => {
  it('counts calls by function, version and code, and times them into second buckets', () => {
    const metrics = new FunctionCallMetrics({ bounds: [0.01, 0.1] });
    metrics.record('alice/resize', 2, 'OK', 5);
    metrics.record('alice/resize', 2, 'OK', 50);
    metrics.record('alice/resize', 2, 'EXEC_USER_ERROR', 500);
    metrics.record('square', 1, 'SCHED_FUNCTION_NOT_FOUND');
    const samples = metrics.samples(NAMES, { node: 'n1' });
    const counters = samples.filter((sample): sample is ScalarSample => sample.type === 'counter');
    expect(counters).toContainEqual({ name: 'lfaas_test_calls_total', help: 'Calls.', type: 'counter', value: 2, labels: { node: 'n1', function: 'alice/resize', version: '2', owner: 'alice', code: 'OK' } });
    expect(counters).toContainEqual(expect.objectContaining({ value: 1, labels: { node: 'n1', function: 'alice/resize', version: '2', owner: 'alice', code: 'EXEC_USER_ERROR' } }));
    expect(counters).toContainEqual(expect.objectContaining({ value: 1, labels: { node: 'n1', function: 'square', version: '1', owner: 'admin', code: 'SCHED_FUNCTION_NOT_FOUND' } }));
    const histograms = samples.filter((sample): sample is HistogramSample => sample.type === 'histogram');
    const resize = histograms.find((sample) => sample.labels?.['function'] === 'alice/resize')!;
    expect(resize.bounds).toEqual([0.01, 0.1]);
    expect(resize.counts).toEqual([1, 1, 1]);
    expect(resize.sum).toBeCloseTo(0.555, 9);
    // A call counted without a duration (failed before it ran) adds nothing to the histogram.
    expect(histograms.find((sample) => sample.labels?.['function'] === 'square')!.counts).toEqual([0, 0, 0]);
  });

  it('tracks at most functionsMax (name, version) pairs; the rest share function="_other"', () => {
    const metrics = new FunctionCallMetrics({ functionsMax: 2 });
    metrics.record('a', 1, 'OK', 1);
    metrics.record('a', 2, 'OK', 1);
    for (let i = 0; i < 100; i++) metrics.record(`flood-${i}`, 1, 'OK', 1);
    metrics.record('a', 1, 'OK', 1);
    expect(metrics.trackedCount).toBe(2);
    const samples = metrics.samples(NAMES, {});
    const functions = new Set(samples.map((sample) => sample.labels?.['function']));
    expect([...functions].sort()).toEqual(['_other', 'a']);
    const other = samples.find((sample): sample is ScalarSample => sample.type === 'counter' && sample.labels?.['function'] === '_other')!;
    expect(other.value).toBe(100);
    expect(other.labels).toMatchObject({ version: '_other', owner: '_other' });
    const a1 = samples.find((sample): sample is ScalarSample => sample.type === 'counter' && sample.labels?.['function'] === 'a' && sample.labels['version'] === '1')!;
    expect(a1.value).toBe(2);
  });

  it('shows nothing before the first call, and names owners by namespace', () => {
    expect(new FunctionCallMetrics().samples(NAMES, {})).toEqual([]);
    expect(ownerLabel('alice/x')).toBe('alice');
    expect(ownerLabel('x')).toBe('admin');
    expect(ownerLabel('/x')).toBe('admin');
  });
});
