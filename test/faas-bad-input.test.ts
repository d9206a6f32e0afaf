/**
 * The FaaS core over real processes fed bad input: unknown functions and DAGs, DAGs that cannot
 * be registered, functions that throw, loop, never settle, exhaust their memory, return too much
 * or get arguments they cannot use, and malformed, bodiless, truncated and oversized frames sent
 * straight to the scheduler's and an executor's sockets with a raw ZeroMQ PUSH socket.
 *
 * Every case asserts the exact typed error, and after each one that the cluster still serves a
 * normal call; at the end, that every process (routing, storage, scheduler, executors) is alive.
 * A function failing inside a DAG fails the DAG call with that function's own error, carried by
 * the error triggers, not with a timeout.
 */
import { RawSocket } from './raw-socket.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas } from '../client/index.js';
import type { DagDefinition } from '../client/index.js';
import { ErrorCode } from '../lattices/index.js';
import { Rpc, bindTransport, decodeEnvelope, encodeEnvelope, encodeValue, errorFromWireMessage, pb, systemClock } from '../protocol/index.js';
import type { NodeTransport, PbTypes } from '../protocol/index.js';
import { FaasCluster, adminToken, eventually, isAlive } from './cluster.js';
import { ManglingTransport, code, rejection } from './wire-faults.js';

// These frames are hand-made on raw sockets (test/raw-socket.ts) of the transport the cluster runs:
// node:net with TLS-PSK by default, ZeroMQ with CURVE and seals under LFAAS_TRANSPORT=zmq.

const MiB = 1024 * 1024;

describe('the FaaS core fed bad input', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  let raw: ManglingTransport;
  let rpc: Rpc;
  /** Where replies to hand-made frames land (their `replyTo`), decoded. */
  let listener: NodeTransport;
  const heard: PbTypes.Envelope[] = [];
  const pushes = new Map<string, RawSocket>();
  let scheduler: string;
  let executor: string;
  let healthyRounds = 0;

  /** Every process of the cluster. */
  const pids = (): number[] => [cluster.routing!.pid, ...[...cluster.nodes.values()].map((node) => node.pid), ...cluster.schedulers.map((s) => s.pid), ...cluster.executors.map((e) => e.pid)];

  /** A raw DEALER socket to `address` (nodes bind ROUTER sockets; one per address, closed in afterAll). */
  async function push(address: string, ...frames: Uint8Array[]): Promise<void> {
    let socket = pushes.get(address);
    if (socket === undefined) {
      socket = new RawSocket(address, { sendHighWaterMark: 1000 });
      pushes.set(address, socket);
    }
    for (const frame of frames) await socket.send(frame);
  }

  /** The reply the listener heard to request id `requestId` (waits up to 5 s). */
  async function replyTo(requestId: number): Promise<PbTypes.Envelope> {
    let found: PbTypes.Envelope | undefined;
    const arrived = await eventually(() => {
      found = heard.find((envelope) => Number(envelope.responseTo) === requestId);
      return found !== undefined;
    }, 5000);
    expect(arrived, `no reply to request ${requestId}`).toBe(true);
    return found!;
  }

  /** The catalogue code of an errorReply (or a callResponse's error). */
  function errorCodeOf(envelope: PbTypes.Envelope): string {
    const error = envelope.errorReply?.error ?? envelope.callResponse?.error;
    expect(error?.code, `expected an error, got ${envelope.body}`).toBeTruthy();
    return errorFromWireMessage(error!).code;
  }

  /** Normal calls still work (four in a row) and every process is up. */
  async function expectServing(): Promise<void> {
    const round = healthyRounds++;
    for (let n = 0; n < 4; n++) expect(await faas.call('healthy', [round, n], { timeoutMs: 10_000 })).toBe(round * 100 + n);
    for (const pid of pids()) expect(isAlive(pid), `process ${pid}`).toBe(true);
  }

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 2, workers: 4 });
    scheduler = cluster.schedulerAddresses[0]!;
    executor = String(cluster.executors[0]!.ready['address']);
    faas = await cluster.connect();
    raw = new ManglingTransport(await bindTransport());
    rpc = new Rpc(raw, systemClock, { token: adminToken() });
    listener = await bindTransport();
    listener.onFrame((frame) => {
      try {
        if (heard.length < 1000) heard.push(decodeEnvelope(frame));
      } catch {
        // Not ours to judge here.
      }
    });
    await faas.register('healthy', code('(round, n) => round * 100 + n'), { timeoutMs: 5000 });
    // The scheduler places calls once it has heard an executor's heartbeat.
    const served = await eventually(async () => {
      try {
        return (await faas.call('healthy', [0, 1], { timeoutMs: 3000 })) === 1;
      } catch {
        return false;
      }
    }, 15_000);
    expect(served).toBe(true);
  }, 60_000);

  afterAll(async () => {
    for (const socket of pushes.values()) socket.close();
    await faas?.close();
    await rpc?.close();
    await raw?.close();
    await listener?.close();
    await cluster.stop();
  }, 60_000);

  it('an unknown function: SCHED_FUNCTION_NOT_FOUND (also a malformed name, a missing version, an async call)', async () => {
    expect((await rejection(faas.call('no-such-function'))).code).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    expect((await rejection(faas.call('not a valid name!'))).code).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    expect((await rejection(faas.call('healthy', [1, 2], { version: 99 }))).code).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    expect((await rejection(faas.callAsync('no-such-function', []))).code).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    expect((await rejection(faas.describe('no-such-function'))).code).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    await expectServing();
  });

  it('an unknown DAG: SCHED_DAG_NOT_FOUND; a DAG call naming a function it lacks: EXEC_BAD_VALUE', async () => {
    expect((await rejection(faas.callDag('no-such-dag', {}))).code).toBe(ErrorCode.SCHED_DAG_NOT_FOUND);
    expect((await rejection(faas.callDagAsync('no-such-dag', {}))).code).toBe(ErrorCode.SCHED_DAG_NOT_FOUND);
    expect((await rejection(faas.dags('no-such-dag'))).code).toBe(ErrorCode.SCHED_DAG_NOT_FOUND);
    await faas.registerDag({ name: 'one-step', functions: ['healthy'], edges: [] });
    expect(await faas.callDag('one-step', { healthy: [2, 5] })).toBe(205);
    expect((await rejection(faas.callDag('one-step', { healthy: [1, 1], stranger: [] }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    await expectServing();
  });

  it('a DAG that cannot be registered: a cycle, two sinks, a bad edge (EXEC_BAD_VALUE), an unknown function (SCHED_FUNCTION_NOT_FOUND)', async () => {
    await faas.register('step-x', code('(v) => v'));
    await faas.register('step-y', code('(v) => v'));
    await faas.register('step-z', code('(v) => v'));
    const bad = async (definition: DagDefinition): Promise<string> => (await rejection(faas.registerDag(definition))).code;
    expect(await bad({ name: 'cycle', functions: ['step-x', 'step-y', 'step-z'], edges: [['step-x', 'step-y'], ['step-y', 'step-z'], ['step-z', 'step-x']] })).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(await bad({ name: 'self-loop', functions: ['step-x'], edges: [['step-x', 'step-x']] })).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(await bad({ name: 'two-sinks', functions: ['step-x', 'step-y', 'step-z'], edges: [['step-x', 'step-y'], ['step-x', 'step-z']] })).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(await bad({ name: 'bad-edge', functions: ['step-x', 'step-y'], edges: [['step-x', 'step-q']] })).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(await bad({ name: 'twice', functions: ['step-x', 'step-x'], edges: [] })).toBe(ErrorCode.EXEC_BAD_VALUE);
    // No functions at all is already refused by the wire validation (a required repeated field).
    expect(await bad({ name: 'empty', functions: [], edges: [] })).toMatch(/^(EXEC_BAD_VALUE|PROTO_MISSING_FIELD)$/);
    expect(await bad({ name: 'bad name!', functions: ['step-x'], edges: [] })).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(await bad({ name: 'ghostly', functions: ['step-x', 'ghost-function'], edges: [['ghost-function', 'step-x']] })).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    // None of them was stored.
    for (const name of ['cycle', 'self-loop', 'two-sinks', 'bad-edge', 'twice', 'ghostly']) expect((await rejection(faas.callDag(name, {}))).code).toBe(ErrorCode.SCHED_DAG_NOT_FOUND);
    await expectServing();
  });

  it('a bad registration: an empty body, a bad name, a memory size or timeout out of range (typed); a body that is no function fails its calls', async () => {
    // An empty body is refused by the wire validation already (code is a required field).
    expect((await rejection(faas.register('empty-code', { code: '' }))).code).toMatch(/^(EXEC_BAD_VALUE|PROTO_MISSING_FIELD)$/);
    expect((await rejection(faas.register('bad name!', code('() => 1')))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await rejection(faas.register('tiny', code('() => 1'), { memoryMb: 1 }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await rejection(faas.register('slow-forever', code('() => 1'), { timeoutMs: 60 * 60_000 }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    // A body that is not a function: the call fails, typed. One that does not parse is refused at
    // registration, as a bundle would be.
    await faas.register('not-a-function', { code: 'module.exports = 42;' });
    expect((await rejection(faas.call('not-a-function'))).code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect((await rejection(faas.register('syntax-error', { code: 'module.exports = (x) => {;' }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    await expectServing();
  });

  it('a function that throws: EXEC_USER_ERROR with its message (an Error, a string, a typed-looking object)', async () => {
    await faas.register('thrower', code('(what) => { if (what === "string") throw "a thrown string"; if (what === "object") throw { message: "an object", code: "NOT_OURS" }; throw new RangeError("out of range: " + what); }'));
    const error = await rejection(faas.call('thrower', ['seven']));
    expect(error.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(error.message).toContain('RangeError');
    expect(error.message).toContain('out of range: seven');
    const thrownString = await rejection(faas.call('thrower', ['string']));
    expect(thrownString.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(thrownString.message).toContain('a thrown string');
    const thrownObject = await rejection(faas.call('thrower', ['object']));
    expect(thrownObject.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(thrownObject.message).toContain('an object');
    await faas.register('async-thrower', code('async () => { await new Promise((r) => setTimeout(r, 20)); throw new Error("failed later"); }'));
    expect(await rejection(faas.call('async-thrower'))).toMatchObject({ code: ErrorCode.EXEC_USER_ERROR, message: expect.stringContaining('failed later') });
    await expectServing();
  });

  it('a function that loops forever or never settles: EXEC_TIMEOUT at its timeoutMs; the worker is replaced', async () => {
    await faas.register('spin', code('() => { for (;;) {} }'), { timeoutMs: 300 });
    await faas.register('hang', code('() => new Promise(() => {})'), { timeoutMs: 300 });
    expect((await rejection(faas.call('spin', [], { timeoutMs: 300 }))).code).toBe(ErrorCode.EXEC_TIMEOUT);
    await expectServing();
    expect((await rejection(faas.call('hang', [], { timeoutMs: 300 }))).code).toBe(ErrorCode.EXEC_TIMEOUT);
    // Its own timeout applies without a call timeout, and several at once do not starve the pool.
    const spins = await Promise.all(Array.from({ length: 3 }, () => rejection(faas.call('spin'))));
    expect(spins.map((e) => e.code)).toEqual([ErrorCode.EXEC_TIMEOUT, ErrorCode.EXEC_TIMEOUT, ErrorCode.EXEC_TIMEOUT]);
    expect((await rejection(faas.call('hang'))).code).toBe(ErrorCode.EXEC_TIMEOUT);
    await expectServing();
  });

  it('a function that exhausts its memory (memoryMb 32): EXEC_OUT_OF_MEMORY; the executor stays up', async () => {
    await faas.register('hog', code('() => { const kept = []; for (let i = 0; i < 1e7; i++) kept.push(new Array(10000).fill(i)); return kept.length; }'), { memoryMb: 32, timeoutMs: 20_000 });
    expect((await rejection(faas.call('hog', [], { timeoutMs: 20_000 }))).code).toBe(ErrorCode.EXEC_OUT_OF_MEMORY);
    await expectServing();
    expect((await rejection(faas.call('hog', [], { timeoutMs: 20_000 }))).code).toBe(ErrorCode.EXEC_OUT_OF_MEMORY);
    await expectServing();
  });

  it('a result larger than 8 MiB: EXEC_BAD_VALUE (sync and async); a large one under the limit goes through', async () => {
    await faas.register('huge-result', code('(mib) => "x".repeat(Math.floor(mib * 1024 * 1024))'), { timeoutMs: 10_000 });
    expect((await rejection(faas.call('huge-result', [9]))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    const future = await faas.callAsync('huge-result', [9]);
    expect((await rejection(future.result({ timeoutMs: 20_000 }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(((await faas.call('huge-result', [2])) as string).length).toBe(2 * MiB);
    await expectServing();
  });

  it('bad arguments: a value that cannot be encoded is refused client-side; wrong types make the function throw', async () => {
    const unencodable = await rejection(faas.call('healthy', [() => 1, 2]));
    expect(unencodable.code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await rejection(faas.call('healthy', [Symbol('s')]))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await rejection(faas.callAsync('healthy', [{ nested: () => 1 }]))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await rejection(faas.callDag('one-step', { healthy: [() => 1] }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    // An argument list that is not an array (an untyped caller).
    expect((await rejection(faas.callDag('one-step', { healthy: 5 as unknown as unknown[] }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    await faas.register('shout', code('(text) => text.toUpperCase()'));
    expect(await faas.call('shout', ['ok'])).toBe('OK');
    const wrong = await rejection(faas.call('shout', [5]));
    expect(wrong.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(wrong.message).toContain('TypeError');
    expect((await rejection(faas.call('shout', []))).code).toBe(ErrorCode.EXEC_USER_ERROR);
    await expectServing();
  });

  it('malformed frames to the scheduler and to an executor are dropped or answered typed; both keep serving', async () => {
    const garbage = [
      Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0x42]),
      new Uint8Array(0),
      Buffer.from('GET / HTTP/1.1\r\nHost: scheduler\r\n\r\n'),
      Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff),
      // A well-formed envelope without a body nor a reply address.
      encodeEnvelope({ sender: 'tcp://127.0.0.1:1', traceId: 'no-body' }),
    ];
    for (const target of [scheduler, executor]) {
      await push(target, ...garbage);
      await expectServing();
    }
    // With a valid reply address: no body is PROTO_UNKNOWN_MESSAGE; a body the role does not
    // handle is PROTO_UNKNOWN_MESSAGE; a body missing a required field is a PROTO_ error.
    let requestId = 1000;
    for (const target of [scheduler, executor]) {
      const empty = requestId++;
      await push(target, encodeEnvelope({ requestId: empty, replyTo: listener.address, token: adminToken() }));
      expect(errorCodeOf(await replyTo(empty))).toBe(ErrorCode.PROTO_UNKNOWN_MESSAGE);
      const foreign = requestId++;
      await push(target, encodeEnvelope({ requestId: foreign, replyTo: listener.address, token: adminToken(), kvsRequest: { kind: 1, tuples: [{ key: 'k' }] } }));
      expect(errorCodeOf(await replyTo(foreign))).toBe(ErrorCode.PROTO_UNKNOWN_MESSAGE);
      const missing = requestId++;
      await push(target, encodeEnvelope({ requestId: missing, replyTo: listener.address, token: adminToken(), callRequest: { function: 'healthy' } }));
      expect(errorCodeOf(await replyTo(missing))).toMatch(/^PROTO_/);
      await expectServing();
    }
    // A schedule for a function no one registered, straight to an executor: answered typed.
    const schedule = requestId++;
    await push(
      executor,
      encodeEnvelope({
        token: adminToken(),
        schedule: { runId: 'stranger-run', functions: [{ name: 'never-registered', version: 1, executor, args: [{ value: encodeValue(1) }] }], replyTo: listener.address, replyRequestId: schedule, timeoutMs: 2000 },
      }),
    );
    expect(errorCodeOf(await replyTo(schedule))).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    // A trigger for a run that does not exist: held (bounded), then forgotten; nothing breaks.
    await push(executor, encodeEnvelope({ trigger: { runId: 'no-such-run', sourceFunction: 'a', targetFunction: 'b', value: encodeValue(1) } }));
    // Truncated requests with a recoverable reply address: PROTO_MALFORMED.
    for (const target of [scheduler, executor]) {
      raw.mangleOnce((frame) => frame.subarray(0, frame.byteLength - 5));
      const error = await rejection(rpc.request(target, { listFunctions: { name: 'healthy-and-some-padding-for-the-cut' } }, { timeoutMs: 5000 }));
      expect(error.code).toBe(ErrorCode.PROTO_MALFORMED);
      // An echo still works from the same socket.
      expect((await rpc.request(target, { echo: { payload: Uint8Array.of(1, 2, 3) } }, { timeoutMs: 5000 })).body).toBe('echo');
    }
    await expectServing();
  });

  it('an async call whose result key is not its own call\'s (a registry record) is refused, and the record is untouched', async () => {
    await faas.register('victim', code('(x) => x'));
    const record = 'lfaas/function/victim@1';
    const before = await faas.kvs.get(record);
    expect(before).toBeDefined();
    const answer = await rpc.request(scheduler, { callRequest: { callId: 'steal-record', function: 'healthy', args: [], async: true, resultKey: record } }, { timeoutMs: 5000 });
    expect(answer.callResponse?.error?.code).toBe(pb.ErrorCode.EXEC_BAD_VALUE);
    // Given time to land, nothing was written over the record: it still reads the same and calls work.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await faas.kvs.get(record))?.encode()).toEqual(before?.encode());
    expect(await faas.call('victim', [7])).toBe(7);
  });

  it('a frame over the 16 MiB limit: PROTO_TOO_LARGE when it names a reply address, dropped otherwise', async () => {
    const huge = new Uint8Array(17 * MiB).fill(0x61);
    for (const target of [scheduler, executor]) {
      const error = await rejection(rpc.request(target, { callRequest: { callId: 'too-large', function: 'healthy', args: [{ value: huge }] } }, { timeoutMs: 15_000 }));
      expect(error.code).toBe(ErrorCode.PROTO_TOO_LARGE);
      await push(target, new Uint8Array(17 * MiB).fill(0xff));
      await expectServing();
    }
    // The client refuses to send one at all.
    expect((await rejection(faas.call('healthy', ['y'.repeat(17 * MiB), 1]))).code).toMatch(/^(PROTO_TOO_LARGE|EXEC_BAD_VALUE)$/);
    await expectServing();
  });

  it('a function failing inside a DAG fails the DAG call with its own error, at once (not a timeout)', async () => {
    await faas.register('chain-first', code('(x) => x + 1'));
    await faas.register('chain-breaks', code('(x) => { throw new Error(`broken at ${x}`); }'));
    await faas.register('chain-last', code('(x) => x * 2'));
    await faas.registerDag({ name: 'broken-chain', functions: ['chain-first', 'chain-breaks', 'chain-last'], edges: [['chain-first', 'chain-breaks'], ['chain-breaks', 'chain-last']] });
    // A call budget of 30 s: an EXEC_USER_ERROR answer proves the error travelled, not a deadline.
    const error = await rejection(faas.callDag('broken-chain', { 'chain-first': [4] }, { timeoutMs: 30_000 }));
    expect(error.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(error.message).toContain('broken at 5');
    // A diamond whose one branch fails while the other is still working.
    await faas.register('fan-out', code('(x) => x'));
    await faas.register('slow-branch', code('async (x) => { await new Promise((r) => setTimeout(r, 300)); return x; }'));
    await faas.register('failing-branch', code('(x) => { throw new Error("branch failed"); }'));
    await faas.register('fan-in', code('(a, b) => [a, b]'));
    await faas.registerDag({
      name: 'half-broken-diamond',
      functions: ['fan-out', 'slow-branch', 'failing-branch', 'fan-in'],
      edges: [['fan-out', 'slow-branch'], ['fan-out', 'failing-branch'], ['slow-branch', 'fan-in'], ['failing-branch', 'fan-in']],
    });
    const branch = await rejection(faas.callDag('half-broken-diamond', { 'fan-out': [1] }, { timeoutMs: 30_000 }));
    expect(branch.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(branch.message).toContain('branch failed');
    // Async: the error is the stored result.
    const future = await faas.callDagAsync('broken-chain', { 'chain-first': [9] }, { timeoutMs: 30_000 });
    const stored = await rejection(future.result({ timeoutMs: 20_000 }));
    expect(stored.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(stored.message).toContain('broken at 10');
    // A function timing out inside a DAG: its EXEC_TIMEOUT, long before the DAG's budget.
    await faas.register('chain-hangs', code('() => new Promise(() => {})'), { timeoutMs: 300 });
    await faas.registerDag({ name: 'hanging-chain', functions: ['chain-first', 'chain-hangs', 'chain-last'], edges: [['chain-first', 'chain-hangs'], ['chain-hangs', 'chain-last']] });
    const hung = await rejection(faas.callDag('hanging-chain', { 'chain-first': [1] }, { timeoutMs: 30_000 }));
    expect(hung.code).toBe(ErrorCode.EXEC_TIMEOUT);
    expect(hung.message).toContain('chain-hangs');
    await expectServing();
  });

  it('every process is still alive', () => {
    expect(pids()).toHaveLength(5);
    for (const pid of pids()) expect(isAlive(pid), `process ${pid}`).toBe(true);
  });
});
