/**
 * A real replica process over real ZeroMQ sockets: bad input of every kind gets a typed error or
 * is dropped and counted, the process stays up and keeps serving; `lfaas up --demo` runs and
 * leaves no process behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counter, ErrorCode, GSet, decodeLattice } from '../lattices/index.js';
import { encodeEnvelope, errorCodeFromWire, pb, Rpc, systemClock, ZmqTransport } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';

function firstTuple(reply: PbTypes.Envelope): PbTypes.IKeyTuple {
  const tuple = reply.kvsResponse?.tuples?.[0];
  if (tuple === undefined) throw new Error(`no tuple in ${JSON.stringify(reply)}`);
  return tuple;
}
const valueOf = (reply: PbTypes.Envelope): unknown => decodeLattice(firstTuple(reply).payload ?? new Uint8Array()).reveal();
const errorOf = (reply: PbTypes.Envelope): string => errorCodeFromWire(firstTuple(reply).error?.code ?? 0);

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a replica process on 127.0.0.1', () => {
  let child: ChildProcess;
  let address: string;
  let transport: ZmqTransport;
  let rpc: Rpc;

  beforeAll(async () => {
    child = spawn(process.execPath, [cli, 'replica', '--id', 'solo', '--port', '0'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LFAAS_CHILD: '1' } });
    const lines = createInterface({ input: child.stdout! });
    address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('replica did not start')), 15_000);
      lines.on('line', (line) => {
        if (line.startsWith('ready ')) {
          clearTimeout(timer);
          resolve(line.slice(6));
        }
      });
    });
    transport = await ZmqTransport.bind();
    rpc = new Rpc(transport, systemClock);
  });

  afterAll(async () => {
    await rpc?.close();
    await transport?.close();
    if (child?.pid !== undefined && isAlive(child.pid)) process.kill(child.pid, 'SIGKILL');
  });

  const put = (key: string, payload: Uint8Array, latticeType: number) =>
    rpc.request(address, { kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key, latticeType, payload }] } }, { timeoutMs: 3000 });
  const get = (key: string) => rpc.request(address, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key }] } }, { timeoutMs: 3000 });

  it('merges and serves lattices', async () => {
    await put('c', Counter.ZERO.increment('a', 2).encode(), 10);
    await put('c', Counter.ZERO.increment('b', 3).encode(), 10);
    const reply = await get('c');
    expect(valueOf(reply)).toBe(5);
  });

  it('refuses a PUT of another lattice type and writes nothing', async () => {
    const reply = await put('c', GSet.of(1).encode(), 2);
    expect(errorOf(reply)).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
    expect(valueOf(await get('c'))).toBe(5);
  });

  it('answers a malformed payload and a missing key with typed per-key errors', async () => {
    const bad = await put('d', new Uint8Array([0xc1, 0x00]), 10);
    expect(errorOf(bad)).toBe(ErrorCode.LATTICE_DECODE);
    const missing = await get('nothing-here');
    expect(errorOf(missing)).toBe(ErrorCode.KVS_KEY_NOT_FOUND);
  });

  it('answers an invalid frame that names a reply address with a typed error', async () => {
    // An unknown enum value: the frame parses but fails validation.
    const reply = rpc.request(address, { kvsRequest: { kind: 42 as never, tuples: [{ key: 'k' }] } }, { timeoutMs: 3000 });
    await expect(reply).rejects.toMatchObject({ code: ErrorCode.PROTO_UNKNOWN_ENUM });
    const empty = rpc.request(address, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [] } }, { timeoutMs: 3000 });
    await expect(empty).rejects.toMatchObject({ code: ErrorCode.PROTO_MISSING_FIELD });
  });

  it('survives garbage, oversized and unknown frames, and keeps serving', async () => {
    for (let i = 0; i < 50; i++) await transport.send(address, Uint8Array.from({ length: 1 + i * 13 }, (_, j) => (i * 131 + j * 7) % 256));
    await transport.send(address, new Uint8Array(17 * 1024 * 1024)); // over the 16 MiB frame limit
    await transport.send(address, encodeEnvelope({ sender: 'x' })); // no body
    const reply = await rpc.request(address, { heartbeat: { nodeId: 'n' } }, { timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(reply).toMatchObject({ code: ErrorCode.PROTO_UNKNOWN_MESSAGE });
    expect(valueOf(await get('c'))).toBe(5);
    expect(isAlive(child.pid!)).toBe(true);
  });
});

describe('lfaas up --demo', () => {
  it('starts replicas, shows the counter converge and the LWW updates lost, and stops every child', () => {
    const run = spawnSync(process.execPath, [cli, 'up', '--demo', '--replicas', '3'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/every replica holds the counter's 100 increments/);
    const pids = [...run.stdout.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  });
});
