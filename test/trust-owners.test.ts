/**
 * Owners and tokens, over real processes: every request a client sends carries its owner token,
 * verified where it enters (the scheduler, the executor for direct calls, every storage shard).
 * Bad tokens and missing rights are refused UNAUTHORISED and change nothing; owner alice reaches
 * none of bob's keys, functions or DAGs, directly or through a function, a DAG, a `ref(key)`
 * argument, a run's mailboxes or an async result key; a grant in a token opens exactly what it
 * names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas, dag, ref } from '../client/index.js';
import { keysRotateToken, readTokenKeys, tokenRevoke } from '../cli/index.js';
import { ErrorCode, HybridClock, LfaasError, Lww } from '../lattices/index.js';
import { Rpc, bindTransport, createToken, generateTokenKeys, pb, systemClock } from '../protocol/index.js';
import type { Grant, PbTypes, Right } from '../protocol/index.js';
import { FaasCluster, eventually, metricValue, scrapeMetrics, testKeysFolder } from './cluster.js';

const ALL: Right[] = ['deploy', 'call', 'read', 'write'];

describe('owners and tokens', () => {
  const cluster = new FaasCluster();
  const clock = new HybridClock('owners-test', () => Date.now());
  const clients: LatticeFaas[] = [];
  const rpcs: Rpc[] = [];
  let admin: LatticeFaas;
  let alice: LatticeFaas;
  let bob: LatticeFaas;

  function token(owner: string, rights: readonly Right[], extra: { keyPrefixes?: string[]; functions?: string[]; grants?: Grant[]; ttlSeconds?: number; nowSeconds?: number } = {}): string {
    return createToken(readTokenKeys(testKeysFolder(), true), { owner, rights, ttlSeconds: extra.ttlSeconds ?? 600, ...extra });
  }

  async function client(presented: string): Promise<LatticeFaas> {
    const made = await cluster.connect(presented);
    clients.push(made);
    return made;
  }

  async function rpcWith(presented: string): Promise<Rpc> {
    const rpc = new Rpc(await bindTransport({}), systemClock, presented === '' ? {} : { token: presented });
    rpcs.push(rpc);
    return rpc;
  }

  /** The typed error `promise` rejects with (it must reject). */
  async function rejection(promise: Promise<unknown>): Promise<LfaasError> {
    const outcome = await promise.then(
      (value) => ({ value }),
      (error: unknown) => error,
    );
    expect(outcome, `accepted: ${JSON.stringify(outcome)}`).toBeInstanceOf(LfaasError);
    return outcome as LfaasError;
  }

  async function refusedUnauthorised(promise: Promise<unknown>, containing?: string): Promise<void> {
    const error = await rejection(promise);
    expect(error.code, error.message).toBe(ErrorCode.UNAUTHORISED);
    if (containing !== undefined) expect(error.message).toContain(containing);
  }

  const put = (faas: LatticeFaas, key: string, value: unknown): Promise<void> => faas.kvs.put(key, Lww.write(clock, value), { ack: 'replicated' });
  const read = async (faas: LatticeFaas, key: string): Promise<unknown> => (await faas.kvs.get(key))?.reveal();

  /** The function that reads a key through its ctx and returns the value, or the error's code. */
  const PEEK = 'module.exports = async (key, ctx) => { try { return await ctx.get(key); } catch (error) { return error.code; } };';
  const POKE = 'module.exports = async (key, ctx) => { try { await ctx.put(key, "poked"); return "written"; } catch (error) { return error.code; } };';

  beforeAll(async () => {
    await cluster.startAll({ nodes: 2, global: 2, schedulers: 1, executors: 1, workers: 4 });
    admin = await cluster.connect();
    alice = await client(token('alice', ALL));
    bob = await client(token('bob', ALL));
    await put(bob, 'bob/secret', 'bob-secret');
    await put(bob, 'bob/shared/doc', 'shared-doc');
    await put(alice, 'alice/own', 'alice-own');
    await bob.register('bob/peek', { code: PEEK });
    await bob.registerDag(dag('bob/pipeline').fn(bob.function('bob/peek')).build());
    await alice.register('alice/peek', { code: PEEK });
    await alice.register('alice/poke', { code: POKE });
    await alice.register('alice/echo', { code: 'module.exports = (x) => x;' });
  }, 120_000);

  afterAll(async () => {
    for (const rpc of rpcs) {
      await rpc.close();
      await rpc.transport.close();
    }
    for (const made of clients) await made.close();
    await admin?.close();
    await cluster.stop();
  });

  it('an owner works in its own namespace: keys, functions, DAGs, sync, direct and async calls, lists', async () => {
    expect(await read(alice, 'alice/own')).toBe('alice-own');
    expect(await alice.call('alice/peek', ['alice/own'])).toBe('alice-own');
    // Again: a later call goes straight to the executor on the lease an earlier one earned (the
    // executor checks the token itself).
    // A lease is granted only while the executor reported itself not busy (its heartbeat every
    // 100 ms): right after registration its pins are loading; a few seconds at most.
    for (let n = 0; n < 60 && alice.counters.direct === 0; n++) {
      expect(await alice.call('alice/echo', [n])).toBe(n);
      if (alice.counters.direct === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(alice.counters.direct).toBeGreaterThan(0);
    expect(await alice.call('alice/echo', [ref('alice/own')])).toBe('alice-own');
    const future = await alice.callAsync('alice/echo', [3]);
    expect(future.resultKey.startsWith('lfaas/result/alice/')).toBe(true);
    expect(await future.result({ timeoutMs: 15_000 })).toBe(3);
    expect((await alice.functions()).map((info) => info.name).sort()).toEqual(['alice/echo', 'alice/peek', 'alice/poke']);
    await alice.registerDag(dag('alice/chain').fn(alice.function('alice/echo')).build());
    expect((await alice.dags()).map((d) => d.name)).toEqual(['alice/chain']);
    // The admin sees every namespace.
    const all = (await admin.functions()).map((info) => info.name);
    expect(all).toEqual(expect.arrayContaining(['alice/echo', 'bob/peek']));
  }, 60_000);

  it('bad tokens are refused typed at the scheduler, the executor and every shard, and change nothing', async () => {
    const other = generateTokenKeys();
    const good = token('alice', ALL);
    const [body, signature] = [good.slice(0, good.lastIndexOf('.')), good.slice(good.lastIndexOf('.') + 1)];
    const claims = JSON.parse(Buffer.from(body.slice('lfaas1.'.length), 'base64url').toString()) as Record<string, unknown>;
    const forged = `lfaas1.${Buffer.from(JSON.stringify({ ...claims, owner: 'bob' })).toString('base64url')}.${signature}`;
    const bad: [string, string, string][] = [
      ['no token', '', 'none was presented'],
      ['an expired token', token('alice', ALL, { nowSeconds: Math.floor(Date.now() / 1000) - 3600, ttlSeconds: 60 }), 'expired'],
      ['a token signed by another cluster', createToken(other, { owner: 'alice', rights: ALL, ttlSeconds: 600 }), 'signature'],
      ['a forged token (claims altered, signature kept)', forged, 'signature'],
      ['a truncated token', good.slice(0, good.length - 10), 'malformed'],
      ['garbage', 'lfaas1.%%%.###', 'malformed'],
    ];
    const shards = await admin.kvs.replicasOf('alice/own');
    const executor = String(cluster.executors[0]!.ready['address']);
    for (const [what, presented, reason] of bad) {
      const rpc = await rpcWith(presented);
      const asks: [string, string, PbTypes.IEnvelope][] = [
        ['register', cluster.schedulerAddresses[0]!, { registerFunction: { spec: { name: 'alice/evil', code: Buffer.from('module.exports = () => 1;') } } }],
        ['call', cluster.schedulerAddresses[0]!, { callRequest: { callId: 'alice/x1', function: 'alice/echo', args: [] } }],
        ['list', cluster.schedulerAddresses[0]!, { listFunctions: { name: 'alice/' } }],
        ['direct call', executor, { schedule: { runId: 'alice/x2', timeoutMs: 1000, functions: [{ name: 'alice/echo', version: 1, executor, args: [] }] } }],
        ...shards.map((shard): [string, string, PbTypes.IEnvelope] => ['write', shard, { kvsRequest: { kind: pb.RequestKind.PUT, ack: pb.AckMode.ACK_DURABLE, tuples: [{ key: 'alice/own', latticeType: Lww.write(clock, 'overwritten').type, payload: Lww.write(clock, 'overwritten').encode() }] } }]),
        ...shards.map((shard): [string, string, PbTypes.IEnvelope] => ['read', shard, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'alice/own' }] } }]),
      ];
      for (const [action, to, request] of asks) {
        const error = await rejection(rpc.request(to, request, { timeoutMs: 3000 }));
        expect(error.code, `${what}, ${action}: ${error.message}`).toBe(ErrorCode.UNAUTHORISED);
        expect(error.message, `${what}, ${action}`).toContain(reason);
      }
      // Through the SDK too.
      if (presented !== '') {
        const sdk = await client(presented);
        await refusedUnauthorised(sdk.call('alice/echo', [1]));
        await refusedUnauthorised(sdk.kvs.get('alice/own'));
      }
    }
    // Nothing changed.
    expect(await read(alice, 'alice/own')).toBe('alice-own');
    expect((await alice.functions()).map((info) => info.name)).not.toContain('alice/evil');
    const refused = metricValue(await scrapeMetrics(cluster.schedulers[0]!), 'lfaas_wire_frames_unauthorised_total');
    expect(refused).toBeGreaterThan(0);
    // Refusals are logged (once per peer per minute), tokens never: no signature appears in any log.
    const logs = [...cluster.schedulers, ...cluster.executors, ...cluster.nodes.values()].flatMap((role) => role.stderr).join('\n');
    expect(logs).toContain('token refused');
    for (const [, presented] of bad) if (presented.length > 20) expect(logs).not.toContain(presented.slice(-20));
  }, 90_000);

  it('a token without the right, or restricted to other key prefixes or functions, is refused', async () => {
    const reader = await client(token('alice', ['read']));
    expect(await read(reader, 'alice/own')).toBe('alice-own');
    await refusedUnauthorised(reader.kvs.put('alice/own', Lww.write(clock, 'x')), 'no write right');
    await refusedUnauthorised(reader.register('alice/more', { code: 'module.exports = () => 1;' }), 'no deploy right');
    await refusedUnauthorised(reader.call('alice/echo', [1]), 'no call right');
    const caller = await client(token('alice', ['call']));
    expect(await caller.call('alice/echo', [5])).toBe(5);
    await refusedUnauthorised(caller.kvs.get('alice/own'), 'no read right');
    await refusedUnauthorised(caller.deleteFunction('alice/echo'), 'no deploy right');
    // Restricted to a key prefix and a function.
    const narrow = await client(token('alice', ALL, { keyPrefixes: ['alice/public/'], functions: ['alice/echo'] }));
    await narrow.kvs.put('alice/public/x', Lww.write(clock, 1));
    await refusedUnauthorised(narrow.kvs.get('alice/own'), 'restricted');
    await refusedUnauthorised(narrow.kvs.put('alice/private/x', Lww.write(clock, 1)), 'restricted');
    expect(await narrow.call('alice/echo', [6])).toBe(6);
    await refusedUnauthorised(narrow.call('alice/peek', ['alice/public/x']), 'restricted');
    // An owner token cannot list the whole cluster.
    await refusedUnauthorised(alice.functions(''), 'not the whole cluster');
    expect(await read(alice, 'alice/own')).toBe('alice-own');
    expect(await read(alice, 'alice/private/x')).toBeUndefined();
  }, 60_000);

  it('alice reaches nothing of bob\'s: keys, functions, DAGs, lists, refs, functions\' ctx, run ids and async results', async () => {
    // Keys, directly (GET, PUT, DELETE, subscription).
    await refusedUnauthorised(alice.kvs.get('bob/secret'), 'not in the namespace of alice');
    await refusedUnauthorised(alice.kvs.put('bob/secret', Lww.write(clock, 'alice-was-here')));
    await refusedUnauthorised(alice.kvs.delete('bob/secret'));
    // Functions and DAGs: call, deploy over, delete, list, compose.
    await refusedUnauthorised(alice.call('bob/peek', ['bob/secret']));
    await refusedUnauthorised(alice.register('bob/peek', { code: 'module.exports = () => "hijacked";' }));
    await refusedUnauthorised(alice.deleteFunction('bob/peek'));
    await refusedUnauthorised(alice.functions('bob/'));
    await refusedUnauthorised(alice.functions('bob/peek'));
    await refusedUnauthorised(alice.dags('bob/'));
    await refusedUnauthorised(alice.callDag('bob/pipeline', { 'bob/peek': ['bob/secret'] } as never));
    await refusedUnauthorised(alice.deleteDag('bob/pipeline'));
    await refusedUnauthorised(alice.registerDag(dag('alice/steal').fn(bob.function('bob/peek')).build()), 'DAG function');
    // A ref(key) argument is read with the caller's rights where the call enters, and with the
    // function's where it runs.
    await refusedUnauthorised(alice.call('alice/echo', [ref('bob/secret')]), 'ref(');
    // Through a function: alice's code runs with alice's rights.
    expect(await alice.call('alice/peek', ['bob/secret'])).toBe(ErrorCode.UNAUTHORISED);
    expect(await alice.call('alice/poke', ['bob/secret'])).toBe(ErrorCode.UNAUTHORISED);
    expect(await alice.call('alice/peek', ['lfaas/function/bob/peek@1'])).toBe(ErrorCode.KVS_BAD_KEY);
    expect(await alice.call('alice/poke', ['lfaas/result/bob/x'])).toBe(ErrorCode.KVS_BAD_KEY);
    // send/recv: a function's messages go only to functions of its own run.
    await alice.register('alice/sender', { code: 'module.exports = async (target, ctx) => { try { await ctx.send(target, "psst"); return "sent"; } catch (error) { return error.code; } };' });
    expect(await alice.call('alice/sender', ['bob/peek'])).toBe(ErrorCode.EXEC_BAD_VALUE);
    // Run ids (and so async records, results and a run's mailboxes) are in the owner's namespace.
    const rpc = await rpcWith(token('alice', ALL));
    const executor = String(cluster.executors[0]!.ready['address']);
    for (const [to, body] of [
      [cluster.schedulerAddresses[0]!, { callRequest: { callId: 'bob/c1', function: 'alice/echo', args: [], async: true, resultKey: 'lfaas/result/bob/c1' } }],
      [cluster.schedulerAddresses[0]!, { callRequest: { callId: 'c2', function: 'alice/echo', args: [] } }],
      [executor, { schedule: { runId: 'bob/r1', timeoutMs: 1000, functions: [{ name: 'alice/echo', version: 1, executor, args: [] }] } }],
      [executor, { schedule: { runId: 'alice/r2', timeoutMs: 1000, functions: [{ name: 'bob/peek', version: 1, executor, args: [] }] } }],
      [executor, { schedule: { runId: 'alice/r3', dag: 'alice/chain', timeoutMs: 1000, functions: [{ name: 'bob/peek', version: 1, executor, args: [] }] } }],
    ] as [string, PbTypes.IEnvelope][]) {
      const error = await rejection(rpc.request(to, body, { timeoutMs: 3000 }));
      expect(error.code, `${JSON.stringify(body)}: ${error.message}`).toBe(ErrorCode.UNAUTHORISED);
    }
    // Bob's async result: alice can neither read it nor subscribe to it.
    const future = await bob.callAsync('bob/peek', ['bob/secret']);
    expect(await future.result({ timeoutMs: 15_000 })).toBe('bob-secret');
    await refusedUnauthorised(alice.kvs.get(future.resultKey), 'system key');
    await refusedUnauthorised(alice.kvs.get(future.resultKey.replace('lfaas/result/', 'lfaas/exec/')), 'system key');
    for (const replica of await admin.kvs.replicasOf(future.resultKey)) {
      const error = await rejection(rpc.request(replica, { subscribe: { subscriber: rpc.transport.address, keys: [future.resultKey], leaseMs: 1000 } }, { timeoutMs: 3000 }));
      expect(error.code, error.message).toBe(ErrorCode.UNAUTHORISED);
    }
    // Bob's things are untouched.
    expect(await read(bob, 'bob/secret')).toBe('bob-secret');
    expect(await bob.call('bob/peek', ['bob/secret'])).toBe('bob-secret');
    expect((await bob.functions()).map((info) => info.name)).toEqual(['bob/peek']);
  }, 90_000);

  it('a grant opens exactly what it names: reading bob/shared/ and calling bob/peek (which runs with bob\'s rights)', async () => {
    const granted = await client(token('alice', ALL, { grants: [{ owner: 'bob', rights: ['read', 'call'], keyPrefixes: ['bob/shared/'], functions: ['bob/peek'] }] }));
    expect(await read(granted, 'bob/shared/doc')).toBe('shared-doc');
    await refusedUnauthorised(granted.kvs.get('bob/secret'));
    await refusedUnauthorised(granted.kvs.put('bob/shared/doc', Lww.write(clock, 'edited')), 'no grant gives write');
    // Bob's function runs as bob: it reads bob's shared key for alice (the ref is checked against alice's rights).
    expect(await granted.call('bob/peek', ['bob/shared/doc'])).toBe('shared-doc');
    await refusedUnauthorised(granted.call('bob/peek', [ref('bob/secret')]), 'ref(');
    await refusedUnauthorised(granted.register('bob/peek', { code: 'module.exports = () => 0;' }));
    expect(await read(bob, 'bob/shared/doc')).toBe('shared-doc');
  }, 60_000);

  // Last: a rotation retires the admin token the other tests use.
  it('a revoked token is refused from then on, and a rotated-out token key once the next rotation drops it, by running processes', async () => {
    const keys = testKeysFolder();
    const carolToken = token('carol', ALL);
    const carol = await client(carolToken);
    await put(carol, 'carol/x', 'c');
    expect(await carol.call('alice/echo', [1]).catch((error: LfaasError) => error.code)).toBe(ErrorCode.UNAUTHORISED);
    tokenRevoke(keys, carolToken);
    const refusedEverywhere = async (): Promise<boolean> => {
      const outcomes = await Promise.all([carol.kvs.get('carol/x'), carol.functions()].map((p) => p.then(() => 'ok', (error: LfaasError) => error.message)));
      return outcomes.every((outcome) => outcome.includes('revoked'));
    };
    expect(await eventually(refusedEverywhere, 5000), 'the revocation reached the shards and the scheduler').toBe(true);
    // Rotation: the old key's tokens stay valid after one rotation, not after the next.
    const before = await client(token('dave', ALL));
    await put(before, 'dave/k', 1);
    keysRotateToken(keys);
    const after = await client(token('dave', ALL));
    expect(await eventually(async () => (await read(after, 'dave/k').catch(() => undefined)) === 1, 5000), 'a token of the new key is accepted').toBe(true);
    expect(await read(before, 'dave/k')).toBe(1);
    keysRotateToken(keys);
    expect(await eventually(async () => (await before.kvs.get('dave/k').then(() => 'ok', (error: LfaasError) => error.code)) === ErrorCode.UNAUTHORISED, 5000), 'the dropped key\'s token is refused').toBe(true);
    expect(await read(after, 'dave/k')).toBe(1);
  }, 60_000);
});
