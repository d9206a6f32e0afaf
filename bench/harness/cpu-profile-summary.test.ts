import { describe, expect, it } from 'vitest';
import { partOf, summariseProfile } from './cpu-profile-summary.js';
import type { CpuProfile } from './cpu-profile-summary.js';

describe('CPU profile summaries', () => {
  it('names parts: ours by folder/file, libraries, Node, V8', () => {
    expect(partOf('file:///work/main/dist/kvs/shard.js', 'get')).toBe('kvs/shard.js');
    expect(partOf('file:///work/main/node_modules/zeromq/lib/index.js', 'send')).toBe('lib zeromq.js');
    expect(partOf('node:internal/timers', 'listOnTimeout')).toBe('node timers');
    expect(partOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(partOf('', 'writeUtf8String')).toBe('native');
    expect(partOf('file:///x/node_modules/@opentelemetry/api/build/src/index.js', 'f')).toBe('lib opentelemetry');
  });

  it('adds each sample the time to the next one, and leaves idle out of busy time', () => {
    const profile: CpuProfile = {
      startTime: 0,
      endTime: 100,
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
        { id: 2, callFrame: { functionName: 'get', url: 'file:///r/dist/kvs/shard.js', lineNumber: 9 } },
        { id: 3, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        { id: 4, callFrame: { functionName: 'send', url: 'file:///r/node_modules/zeromq/lib/index.js', lineNumber: 0 } },
      ],
      samples: [2, 2, 3, 4, 2],
      timeDeltas: [0, 10, 20, 30, 40],
    };
    const summary = summariseProfile(profile);
    // Sample i lasts until sample i+1: get 10+20 (and the last sample, 0), idle 30, send 40.
    expect(summary.totalMicros).toBe(100);
    expect(summary.busyMicros).toBe(70);
    expect(summary.parts).toEqual([
      { name: 'lib zeromq.js', micros: 40 },
      { name: 'kvs/shard.js', micros: 30 },
    ]);
    expect(summary.functions[0]).toEqual({ name: 'send lib zeromq.js:1', micros: 40 });
  });
});
