import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLL_US, afterReceive, afterSend, pollMicros, pollingState, usePolling } from './busy-poll.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('polling after traffic', () => {
  it('reads LFAAS_POLL_US as whole microseconds in range, and refuses anything else', () => {
    expect(pollMicros(undefined)).toBe(DEFAULT_POLL_US);
    expect(pollMicros('')).toBe(DEFAULT_POLL_US);
    expect(pollMicros('0')).toBe(0);
    expect(pollMicros('250')).toBe(250);
    for (const bad of ['-1', '1.5', 'abc', '10001', '1e9']) expect(() => pollMicros(bad)).toThrow(/LFAAS_POLL_US/);
  });

  it.skipIf(process.env['LFAAS_POLL_US'] !== undefined)('polls only once messages come within the window of the traffic before them, and stops when they come further apart', async () => {
    // This test process has no LFAAS_POLL_US: off until asked.
    expect(pollingState().windowUs).toBe(0);
    afterSend();
    afterReceive();
    expect(pollingState()).toEqual({ windowUs: 0, score: 0, polling: false });
    usePolling(10_000);
    // Quick exchanges: each reply within the 10 ms window of the request before it.
    for (let i = 0; i < 4; i++) {
      afterSend();
      afterReceive();
    }
    expect(pollingState().score).toBe(4);
    expect(pollingState().polling).toBe(true);
    // The window runs out with no traffic: the loop stops polling by itself (it would hold the event loop otherwise).
    const deadline = Date.now() + 2000;
    while (pollingState().polling && Date.now() < deadline) await sleep(5);
    expect(pollingState().polling).toBe(false);
    // Messages further apart than the window score down; below zero there is no polling at all.
    for (let i = 0; i < 6; i++) {
      await sleep(15);
      afterReceive();
    }
    expect(pollingState().score).toBeLessThan(0);
    afterSend();
    expect(pollingState().polling).toBe(false);
  });

  it('LFAAS_POLL_US decides for the whole process, over what a role asks', () => {
    const module = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'protocol', 'busy-poll.js');
    const script = `import(${JSON.stringify(module)}).then((m) => { m.usePolling(300); console.log(m.pollingState().windowUs); })`;
    const run = (env: string | undefined): number => Number(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, LFAAS_POLL_US: env ?? '' }, encoding: 'utf8' }).trim());
    expect(run('0')).toBe(0);
    expect(run('50')).toBe(50);
    expect(run(undefined)).toBe(300);
  });
});
