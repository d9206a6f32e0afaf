/**
 * What a ZmqTransport advertises (zmq-transport.ts, docs/multi-host.md): the bind host by
 * default; `advertise` when given; for a wildcard bind without it, a non-loopback interface
 * address, never 127.0.0.1; a wildcard can never be advertised. And the latency test hook
 * (LFAAS_TEST_SEND_DELAY_MS) in a child process running the built module: sends still arrive, in
 * order.
 */
import { spawnSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { ZmqTransport, advertisedHost } from './zmq-transport.js';

const nonLoopbackV4 = Object.values(networkInterfaces()).flatMap((list) => list ?? []).find((info) => !info.internal && info.family === 'IPv4')?.address;

describe('ZmqTransport: advertised addresses', () => {
  const open: ZmqTransport[] = [];
  afterEach(async () => {
    for (const transport of open.splice(0)) await transport.close();
  });

  it('advertises the bind host, or the advertise option, with the bound port and the key', async () => {
    const plain = await ZmqTransport.bind({ host: '127.0.0.1' });
    open.push(plain);
    expect(plain.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+#[A-Za-z0-9_-]{43}$/);
    const named = await ZmqTransport.bind({ host: '127.0.0.1', advertise: 'node-7.example' });
    open.push(named);
    expect(named.address).toMatch(/^tcp:\/\/node-7\.example:\d+#/);
    expect(advertisedHost('127.0.0.1', '::1')).toBe('[::1]');
  });

  it('a wildcard bind never advertises loopback: the given address, else an interface address, else an error', async () => {
    const given = await ZmqTransport.bind({ host: '0.0.0.0', advertise: '10.9.8.7' });
    open.push(given);
    expect(given.address).toMatch(/^tcp:\/\/10\.9\.8\.7:\d+#/);
    if (nonLoopbackV4 !== undefined) {
      const chosen = await ZmqTransport.bind({ host: '0.0.0.0' });
      open.push(chosen);
      expect(chosen.address.startsWith(`tcp://${nonLoopbackV4}:`)).toBe(true);
    } else {
      await expect(ZmqTransport.bind({ host: '0.0.0.0' })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
    }
    expect(() => advertisedHost('0.0.0.0', '0.0.0.0')).toThrow(/wildcard/);
  });

  it('LFAAS_TEST_SEND_DELAY_MS delays sends and keeps their order', () => {
    // The built module (the hook is read once, when it loads: a child process with the variable set).
    const transportUrl = new URL('../dist/protocol/zmq-transport.js', import.meta.url).href;
    const script = `
      const { ZmqTransport } = await import(${JSON.stringify(transportUrl)});
      const a = await ZmqTransport.bind({}); const b = await ZmqTransport.bind({});
      const got = []; b.onFrame((frame) => got.push(new TextDecoder().decode(frame)));
      const started = performance.now();
      for (let i = 0; i < 20; i++) void a.send(b.address, new TextEncoder().encode(String(i)));
      for (let waited = 0; got.length < 20 && waited < 10000; waited += 5) await new Promise((r) => setTimeout(r, 5));
      console.log(JSON.stringify({ got, elapsed: performance.now() - started }));
      await a.close(); await b.close();`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...process.env, LFAAS_TEST_SEND_DELAY_MS: '150' } });
    expect(run.status, run.stderr).toBe(0);
    const { got, elapsed } = JSON.parse(run.stdout.trim().split('\n').pop()!) as { got: string[]; elapsed: number };
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    // The delay is a floor (no frame can arrive before it), not a timing assertion on load.
    expect(elapsed).toBeGreaterThanOrEqual(150);
  });
});
