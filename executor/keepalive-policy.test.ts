/**
 * The keep-alive policies in virtual time: fixed windows; the hybrid histogram policy learns a
 * periodic function's idle time (unloaded after a call, loaded again just before the next, warm
 * at every call, loaded a fraction of the time), falls back to its range when it knows too
 * little or the idle times spread flat; and (properties) windows are never negative, a warm call
 * always found a loaded runtime, and loaded time never exceeds the idle time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FixedKeepAlive, HybridHistogramKeepAlive, keepAlivePolicy, replayGap } from './keepalive-policy.js';

const MINUTE = 60_000;

describe('keep-alive policies', () => {
  it('fixed: warm within the window, loaded for the idle time up to it', () => {
    const policy = new FixedKeepAlive(10 * MINUTE);
    expect(replayGap(policy.windows(), 9 * MINUTE)).toEqual({ warm: true, loadedMs: 9 * MINUTE });
    expect(replayGap(policy.windows(), 11 * MINUTE)).toEqual({ warm: false, loadedMs: 10 * MINUTE });
    expect(new FixedKeepAlive().windows().keepAliveMs).toBe(15 * MINUTE);
  });

  it('adaptive: a function called every 30 minutes is unloaded after each call and loaded just before the next', () => {
    const policy = new HybridHistogramKeepAlive();
    expect(policy.windows()).toEqual({ prewarmMs: 0, keepAliveMs: 240 * MINUTE });
    let warm = 0;
    let loaded = 0;
    for (let call = 0; call < 50; call++) {
      const idle = 30 * MINUTE + ((call * 7919) % 20_000) - 10_000;
      const outcome = replayGap(policy.windows(), idle);
      if (call >= 10) {
        warm += outcome.warm ? 1 : 0;
        loaded += outcome.loadedMs;
      }
      policy.recordIdle(idle);
    }
    const windows = policy.windows();
    expect(windows.prewarmMs).toBeGreaterThan(20 * MINUTE);
    expect(windows.prewarmMs).toBeLessThan(30 * MINUTE);
    expect(windows.prewarmMs + windows.keepAliveMs).toBeGreaterThan(31 * MINUTE);
    // Warm at every call once learned, loaded far less than a 30-minute fixed window would.
    expect(warm).toBe(40);
    expect(loaded / (40 * 30 * MINUTE)).toBeLessThan(0.25);
  });

  it('adaptive falls back to its range with too few idle times, a flat histogram, or idle times beyond its range', () => {
    const few = new HybridHistogramKeepAlive();
    for (let i = 0; i < 5; i++) few.recordIdle(10 * MINUTE);
    expect(few.windows()).toEqual({ prewarmMs: 0, keepAliveMs: 240 * MINUTE });
    const flat = new HybridHistogramKeepAlive();
    for (let i = 0; i < 240; i++) flat.recordIdle(i * MINUTE + 1);
    expect(flat.windows().prewarmMs).toBe(0);
    const far = new HybridHistogramKeepAlive();
    for (let i = 0; i < 20; i++) far.recordIdle(i % 3 === 0 ? 5 * MINUTE : 10 * 60 * MINUTE);
    expect(far.windows()).toEqual({ prewarmMs: 0, keepAliveMs: 240 * MINUTE });
    // Nonsense idle times are ignored.
    const odd = new HybridHistogramKeepAlive();
    odd.recordIdle(Number.NaN);
    odd.recordIdle(-5);
    expect(odd.windows()).toEqual({ prewarmMs: 0, keepAliveMs: 240 * MINUTE });
  });

  it('properties: windows are never negative; a warm call found a loaded runtime; loaded time is at most the idle time', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 6 * 60 * MINUTE }), { maxLength: 200 }), fc.boolean(), (idles, adaptive) => {
        const policy = keepAlivePolicy(adaptive ? { kind: 'adaptive' } : { kind: 'fixed', keepAliveMs: 10 * MINUTE });
        for (const idle of idles) {
          const windows = policy.windows();
          expect(windows.prewarmMs).toBeGreaterThanOrEqual(0);
          expect(windows.keepAliveMs).toBeGreaterThan(0);
          const outcome = replayGap(windows, idle);
          expect(outcome.loadedMs).toBeGreaterThanOrEqual(0);
          expect(outcome.loadedMs).toBeLessThanOrEqual(idle);
          if (outcome.warm) expect(idle).toBeGreaterThanOrEqual(windows.prewarmMs);
          if (outcome.warm) expect(idle).toBeLessThanOrEqual(windows.prewarmMs + windows.keepAliveMs);
          policy.recordIdle(idle);
        }
      }),
      { numRuns: 200 },
    );
  });
});
