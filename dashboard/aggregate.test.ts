/**
 * The collector's aggregation: ClusterStats answers as the routing node and schedulers send them
 * become the ring, shard, executor and function rows (departed nodes left out, each executor
 * once however many schedulers know it, function loads summed over executors and joined with the
 * registry); the time series stay bounded and align on the time axis.
 */
import { describe, expect, it } from 'vitest';
import type { PbTypes } from '../protocol/index.js';
import { clusterView, histogramP99 } from './aggregate.js';
import { membershipEvents } from './collector.js';
import { FunctionSeries } from './series.js';

const routing: PbTypes.IClusterStats = {
  nodes: [
    { id: 'node-0', tier: 1, address: 'tcp://127.0.0.1:7400', shardAddresses: ['a', 'b'] },
    { id: 'node-1', tier: 1, address: 'tcp://127.0.0.1:7403', shardAddresses: ['c', 'd'] },
    { id: 'node-2', tier: 1, address: 'tcp://127.0.0.1:7406', shardAddresses: ['e', 'f'], departed: true },
  ],
  shards: [
    { nodeId: 'node-0', shard: 0, keyCount: 3, occupancyBytes: 300, requestsPerSecond: 5, sentAtMs: 10 },
    // A newer report of the same shard replaces the older one.
    { nodeId: 'node-0', shard: 0, keyCount: 4, occupancyBytes: 400, requestsPerSecond: 6, sentAtMs: 20 },
    { nodeId: 'node-0', shard: 1, keyCount: 1, occupancyBytes: 100, requestsPerSecond: 1, sentAtMs: 20 },
    { nodeId: 'node-1', shard: 0, keyCount: 2, occupancyBytes: 250, requestsPerSecond: 0, sentAtMs: 20, latency: { boundsUs: [100, 1000, 1e12], counts: [98, 2, 0] } },
    // The departed node's shard is not shown.
    { nodeId: 'node-2', shard: 0, keyCount: 9, occupancyBytes: 900, sentAtMs: 20 },
  ],
  replicationDefault: 2,
  replicationMax: 3,
};

const executor = (address: string, sentAtMs: number, functions: PbTypes.IFunctionLoad[], extra: Partial<PbTypes.IExecutorStatus> = {}): PbTypes.IExecutorStatus => ({
  executorId: `${address}#boot`,
  address,
  utilisation: 0.5,
  capacity: 4,
  warmFunctions: ['square@1'],
  stems: 2,
  sentAtMs,
  functions,
  ...extra,
});

describe('clusterView', () => {
  it('makes the ring, shards, executors and functions of one round', () => {
    const view = clusterView({
      atMs: 1000,
      routing,
      schedulers: [
        { executors: [executor('tcp://e0', 5, [{ name: 'square', rate: 10, p50Ms: 2, p99Ms: 9, errors: 1 }]), executor('tcp://e1', 5, [{ name: 'square', rate: 30, p50Ms: 4, p99Ms: 20 }, { name: 'ghost', rate: 1, p50Ms: 1, p99Ms: 1 }])] },
        // The second scheduler knows e1 too, with a newer status.
        { executors: [executor('tcp://e1', 6, [{ name: 'square', rate: 30, p50Ms: 4, p99Ms: 20 }], { warmFunctions: ['square@1', 'cube@2'], stems: 1 })] },
        undefined,
      ],
      functions: [
        { name: 'square', latest: 1, memoryMb: 128 },
        { name: 'cube', latest: 2, memoryMb: 256 },
      ],
      dags: [],
    });
    expect(view.ring).toEqual([
      { id: 'node-0', address: 'tcp://127.0.0.1:7400', tier: 'memory', shards: 2, keys: 5, bytes: 500, rps: 7 },
      { id: 'node-1', address: 'tcp://127.0.0.1:7403', tier: 'memory', shards: 2, keys: 2, bytes: 250, rps: 0 },
    ]);
    expect(view.shards.map((shard) => [shard.node, shard.shard, shard.keys, shard.bytes])).toEqual([
      ['node-0', 0, 4, 400],
      ['node-0', 1, 1, 100],
      ['node-1', 0, 2, 250],
    ]);
    expect(view.shards[2]!.p99Ms).toBe(1);
    expect(view.executors).toHaveLength(2);
    expect(view.executors[1]).toMatchObject({ address: 'tcp://e1', warm: ['cube@2', 'square@1'], stems: 1, schedulers: 2, capacity: 4 });
    const square = view.functions.find((fn) => fn.name === 'square')!;
    expect(square).toMatchObject({ version: 1, memoryMb: 128, callsPerSecond: 40, errorsPerSecond: 1, p99Ms: 20, executors: 2, warmOn: 2 });
    expect(square.p50Ms).toBeCloseTo((10 * 2 + 30 * 4) / 40);
    // Registered and idle: listed with no load; run but not in the registry (deleted since): version 0.
    expect(view.functions.find((fn) => fn.name === 'cube')).toMatchObject({ version: 2, callsPerSecond: 0, executors: 0, warmOn: 1 });
    expect(view.replication).toEqual({ default: 2, max: 3 });
  });

  it('an empty round is an empty view', () => {
    expect(clusterView({ atMs: 0, routing: undefined, schedulers: [], functions: undefined, dags: undefined })).toEqual({ ring: [], shards: [], executors: [], functions: [], replication: { default: 1, max: 1 } });
  });

  it('reads a histogram\'s p99, the overflow bucket as the bound below it', () => {
    expect(histogramP99(undefined)).toBeUndefined();
    expect(histogramP99({ boundsUs: [100, 1000], counts: [0, 0] })).toBeUndefined();
    expect(histogramP99({ boundsUs: [100, 1000, 1e12], counts: [50, 50, 0] })).toBe(1);
    expect(histogramP99({ boundsUs: [100, 1000, 1e12], counts: [0, 0, 5] })).toBe(1);
  });
});

describe('membershipEvents', () => {
  it('names the storage nodes and executors that joined or left between two rounds', () => {
    const round = (nodes: PbTypes.INodeInfo[], executors: string[]) => clusterView({ atMs: 0, routing: { nodes }, schedulers: [{ executors: executors.map((address) => executor(address, 1, [])) }], functions: [], dags: [] });
    const before = round([{ id: 'node-0' }, { id: 'node-1' }], ['tcp://e0#key', 'tcp://e1#key']);
    const after = round([{ id: 'node-0' }, { id: 'node-1', departed: true }, { id: 'node-2' }], ['tcp://e1#key', 'tcp://e2#key']);
    expect(membershipEvents(before, after, 7).map(({ kind, what, atMs, source }) => ({ kind, what, atMs, source }))).toEqual([
      { kind: 'joined', what: 'storage node-2', atMs: 7, source: 'dashboard' },
      { kind: 'left', what: 'storage node-1', atMs: 7, source: 'dashboard' },
      { kind: 'joined', what: 'executor tcp://e2', atMs: 7, source: 'dashboard' },
      { kind: 'left', what: 'executor tcp://e0', atMs: 7, source: 'dashboard' },
    ]);
    expect(membershipEvents(after, after, 8)).toEqual([]);
  });
});

describe('FunctionSeries', () => {
  it('keeps the last points, and the busiest functions as aligned columns', () => {
    const series = new FunctionSeries(5, 2);
    const row = (name: string, calls: number) => ({ name, version: 1, memoryMb: 128, callsPerSecond: calls, p50Ms: 1, p99Ms: 2, errorsPerSecond: 0, executors: 1, warmOn: 1 });
    for (let n = 0; n < 8; n++) series.add(1000 * n, [row('a', n), row('b', 10), ...(n === 7 ? [row('c', 100)] : [])]);
    const view = series.view();
    expect(series.length).toBe(5);
    expect(view.t).toEqual([3, 4, 5, 6, 7]);
    expect(view.calls).toEqual([13, 14, 15, 16, 117]);
    expect(view.functions.map((fn) => fn.name)).toEqual(['b', 'c']);
    expect(view.functions[1]!.calls).toEqual([0, 0, 0, 0, 100]);
    expect(view.functions[1]!.p99Ms).toEqual([null, null, null, null, 2]);
  });
});
