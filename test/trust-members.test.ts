/**
 * Membership by key, over real processes: every role runs with the test's keys folder, and a
 * stranger (a client with a key of its own) and a member of the wrong role try the cluster's own
 * messages. Each is answered UNAUTHORISED, changes nothing (the ring, the scheduler's executors,
 * the keys), is counted and logged once per peer per minute, and the cluster keeps working. Then
 * key rotation: a member added with `keys add` joins, is refused once `keys revoke` takes it off
 * the list, and its replacement joins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatticeFaas } from '../client/index.js';
import { keysAdd, keysRevoke } from '../cli/index.js';
import { ErrorCode, HybridClock, LfaasError, Lww } from '../lattices/index.js';
import { Rpc, bindTransport, keyText, pb, readKeyPair, systemClock } from '../protocol/index.js';
import type { KeyPair, NodeTransport, PbTypes } from '../protocol/index.js';
import { FaasCluster, eventually, isAlive, metricValue, scrapeMetrics, testKeysFolder } from './cluster.js';
import type { RoleProcess } from './cluster.js';

describe('membership by key', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  const open: Rpc[] = [];
  const clock = new HybridClock('trust-test', () => Date.now());

  async function asker(keyPair?: KeyPair): Promise<Rpc> {
    // A stranger to the cluster's members, though a client with a valid (admin) token.
    const rpc = new Rpc(await bindTransport(keyPair === undefined ? {} : { keyPair }), systemClock, { token: process.env['LFAAS_TOKEN']! });
    open.push(rpc);
    return rpc;
  }

  /** The error `body` gets from `to` (it must be refused, typed). */
  async function refusal(rpc: Rpc, to: string, body: PbTypes.IEnvelope): Promise<LfaasError> {
    const outcome = await rpc.request(to, body, { timeoutMs: 3000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(outcome, `${Object.keys(body).join()} to ${to} was accepted`).toBeInstanceOf(LfaasError);
    return outcome as LfaasError;
  }

  const executorsKnown = async (): Promise<number | undefined> => metricValue(await scrapeMetrics(cluster.schedulers[0]!), 'lfaas_scheduler_executors');
  const unauthorised = async (role: RoleProcess): Promise<number> => {
    const text = await scrapeMetrics(role);
    let sum = 0;
    for (const line of text.split('\n')) if (line.startsWith('lfaas_wire_frames_unauthorised_total{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    return sum;
  };

  async function works(): Promise<void> {
    const key = `trust-${Date.now()}-${Math.random()}`;
    await faas.kvs.put(key, Lww.write(clock, 'v'), { ack: 'replicated' });
    expect((await faas.kvs.get(key))?.reveal()).toBe('v');
    expect(await faas.call('trust-add', [1, 2])).toBe(3);
  }

  beforeAll(async () => {
    await cluster.startAll({ nodes: 2, global: 2, schedulers: 1, executors: 1, workers: 2 });
    faas = await cluster.connect();
    await faas.register('trust-add', { code: 'module.exports = (a, b) => a + b;' });
    await works();
  }, 90_000);

  afterAll(async () => {
    for (const rpc of open) {
      await rpc.close();
      await rpc.transport.close();
    }
    await faas?.close();
    await cluster.stop();
  });

  it('a stranger\'s join, departure, ring change, gossip, hand-off, statistics, heartbeat and schedules are refused typed and change nothing', async () => {
    const stranger = await asker();
    const routing = cluster.routingAddress;
    const [nodeId, node] = [...cluster.nodes.entries()][0]!;
    const control = String(node.ready['control']);
    const shard = cluster.shardsOf(nodeId)[0]!;
    const scheduler = cluster.schedulerAddresses[0]!;
    const executor = String(cluster.executors[0]!.ready['address']);
    const ringBefore = (await stranger.request(routing, { ringRequest: { subscriber: stranger.transport.address, leaseMs: 0 } }, { timeoutMs: 3000 })).ringUpdate!;
    const forged = `forged-${Date.now()}`;
    const payload = Lww.write(clock, 'forged');
    const attempts: [string, string, PbTypes.IEnvelope][] = [
      ['join', routing, { nodeJoin: { node: { id: 'intruder', tier: pb.Tier.TIER_MEMORY, address: stranger.transport.address, shardAddresses: [stranger.transport.address], virtualNodes: 64 } } }],
      ['ring change', routing, { ringUpdate: { epoch: 999, nodes: [{ id: 'intruder', tier: pb.Tier.TIER_MEMORY, address: stranger.transport.address, shardAddresses: [stranger.transport.address] }] } }],
      ['ring change to a shard', shard, { ringUpdate: { epoch: 999, nodes: [] , defaultGlobal: 1 } }],
      ['departure', control, { nodeDepart: { nodeId, graceful: true } }],
      ['statistics', routing, { statsReport: { nodeId: 'intruder', shard: 0, keyCount: 1 } }],
      ['heartbeat', routing, { heartbeat: { nodeId: 'intruder' } }],
      ['gossip', shard, { gossip: { fromNode: stranger.transport.address, tuples: [{ key: forged, latticeType: payload.type, payload: payload.encode() }] } }],
      ['hand-off', shard, { kvsRequest: { kind: pb.RequestKind.PUT, fromReplica: true, ack: pb.AckMode.ACK_DURABLE, tuples: [{ key: forged, latticeType: payload.type, payload: payload.encode() }] } }],
      ['executor heartbeat', scheduler, { executorStatus: { executorId: 'intruder', address: stranger.transport.address, utilisation: 0, capacity: 64, warmFunctions: ['trust-add@1'] } }],
      ['prepare', executor, { prepare: { functions: [{ name: 'trust-add', version: 1 }] } }],
      ['schedule from a scheduler', executor, { schedule: { runId: 'r-forged', scheduler, timeoutMs: 1000, functions: [{ name: 'trust-add', version: 1, executor, args: [] }] } }],
      ['trigger', executor, { trigger: { runId: 'r-forged', sourceFunction: 'a', targetFunction: 'b' } }],
    ];
    for (const [what, to, body] of attempts) {
      const error = await refusal(stranger, to, body);
      expect(error.code, `${what}: ${error.message}`).toBe(ErrorCode.UNAUTHORISED);
      expect(error.message, what).toContain('not a member');
    }
    // Nothing changed: the ring, the scheduler's executors, the forged key, the departed node.
    const ringAfter = (await stranger.request(routing, { ringRequest: { subscriber: stranger.transport.address, leaseMs: 0 } }, { timeoutMs: 3000 })).ringUpdate!;
    expect(ringAfter.nodes?.map((n) => n.id).sort()).toEqual(ringBefore.nodes?.map((n) => n.id).sort());
    expect(await executorsKnown()).toBe(1);
    expect(await faas.kvs.get(forged)).toBeUndefined();
    expect(isAlive(node.pid)).toBe(true);
    // Counted where it was refused (the routing node serves no metrics).
    for (const role of [node, cluster.schedulers[0]!, cluster.executors[0]!]) expect(await unauthorised(role)).toBeGreaterThan(0);
    await works();
  }, 60_000);

  it('a flood of refused heartbeats is logged once per peer per minute, and calls still reach only the real executor', async () => {
    const stranger = await asker();
    const scheduler = cluster.schedulerAddresses[0]!;
    const before = await unauthorised(cluster.schedulers[0]!);
    for (let i = 0; i < 20; i++) {
      const error = await refusal(stranger, scheduler, { executorStatus: { executorId: 'intruder-2', address: stranger.transport.address, capacity: 64, warmFunctions: ['trust-add@1'] } });
      expect(error.code).toBe(ErrorCode.UNAUTHORISED);
    }
    expect((await unauthorised(cluster.schedulers[0]!)) - before).toBe(20);
    const peer = keyText((stranger.transport as NodeTransport).keyPair!.publicKey);
    expect(cluster.schedulers[0]!.stderr.filter((line) => line.includes(peer) && line.includes('members only')).length).toBe(1);
    for (let i = 0; i < 5; i++) expect(await faas.call('trust-add', [i, 1])).toBe(i + 1);
  }, 60_000);

  it('system keys: a stranger cannot write or delete a registry record, and a function cannot write a system key', async () => {
    const stranger = await asker();
    const record = 'lfaas/function/trust-add@1';
    const before = (await faas.kvs.get(record))?.encode();
    expect(before, 'the registry record exists').toBeDefined();
    const shards = await faas.kvs.replicasOf(record);
    const forged = Lww.write(clock, { name: 'trust-add', version: 1, code: 'module.exports = () => "owned"' });
    for (const shard of shards) {
      for (const kind of [pb.RequestKind.PUT, pb.RequestKind.DELETE]) {
        const tuple = kind === pb.RequestKind.PUT ? { key: record, latticeType: forged.type, payload: forged.encode() } : { key: record };
        const error = await refusal(stranger, shard, { kvsRequest: { kind, ack: pb.AckMode.ACK_DURABLE, tuples: [tuple] } });
        expect(error.code).toBe(ErrorCode.UNAUTHORISED);
        expect(error.message).toContain('system key');
      }
    }
    expect(Buffer.from((await faas.kvs.get(record))!.encode()).equals(Buffer.from(before!))).toBe(true);
    // Through the client library too (it reports the shard's refusal).
    await expect(faas.kvs.put('lfaas/functions', Lww.write(clock, 'x'))).rejects.toMatchObject({ code: ErrorCode.UNAUTHORISED });
    // A function's ctx: the executor (a member that writes results) refuses it for the function.
    await faas.register('trust-sneak', { code: 'module.exports = async (ctx) => { try { await ctx.put("lfaas/function/trust-add@1", "owned"); return "written"; } catch (error) { return error.code; } };' });
    expect(await faas.call('trust-sneak', [])).toBe('KVS_BAD_KEY');
    expect(await faas.call('trust-add', [20, 22])).toBe(42);
  }, 60_000);

  it('a member of the wrong role is refused what its role may not send', async () => {
    const executorKeyed = await asker(readKeyPair(testKeysFolder(), 'executor'));
    const error = await refusal(executorKeyed, cluster.routingAddress, { nodeJoin: { node: { id: 'executor-posing', tier: pb.Tier.TIER_MEMORY, address: executorKeyed.transport.address, shardAddresses: [executorKeyed.transport.address] } } });
    expect(error.code).toBe(ErrorCode.UNAUTHORISED);
    expect(error.message).toContain('the sender is a executor member');
    const storageKeyed = await asker(readKeyPair(testKeysFolder(), 'storage'));
    const asExecutor = await refusal(storageKeyed, cluster.schedulerAddresses[0]!, { executorStatus: { executorId: 'storage-posing', address: storageKeyed.transport.address, capacity: 64 } });
    expect(asExecutor.code).toBe(ErrorCode.UNAUTHORISED);
    expect(await executorsKnown()).toBe(1);
  });

  it('rotation: a member added with keys add joins; revoked, it is refused from then on; its replacement joins', async () => {
    const keys = testKeysFolder();
    keysAdd(keys, 'executor', 'executor-2');
    const second = await cluster.startExecutor(2, ['--key-name', 'executor-2']);
    expect(await eventually(async () => (await executorsKnown()) === 2, 10_000), 'the added executor joined').toBe(true);
    const refusedBefore = await unauthorised(cluster.schedulers[0]!);
    keysRevoke(keys, 'executor-2');
    // The list is re-read within a second; the revoked executor's heartbeats are refused, and the
    // scheduler forgets it after its executor timeout.
    let known: number | undefined;
    expect(await eventually(async () => (known = await executorsKnown()) === 1, 15_000), `executors known after the revocation: ${known}`).toBe(true);
    // Still running, and still heartbeating: each heartbeat is refused.
    expect(isAlive(second.pid)).toBe(true);
    expect(await eventually(async () => (await unauthorised(cluster.schedulers[0]!)) > refusedBefore + 3, 5000), 'the revoked executor\'s heartbeats are refused').toBe(true);
    for (let i = 0; i < 10; i++) expect(await faas.call('trust-add', [i, 2])).toBe(i + 2);
    keysAdd(keys, 'executor', 'executor-3');
    await cluster.startExecutor(2, ['--key-name', 'executor-3']);
    expect(await eventually(async () => (await executorsKnown()) === 2, 10_000), 'the replacement joined').toBe(true);
    await works();
  }, 90_000);
});
