/**
 * The control machine of a storage node fed what the wire fuzzer sends it (test/fuzz.test.ts): an
 * echo, messages it does not handle, and ring updates from senders that are not its routing nodes.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, errorFromWireMessage } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import { nodeToWire } from './ring.js';
import { StorageNode } from './storage-node.js';

const CONTROL = 'tcp://127.0.0.1:7400';
const SHARD = 'tcp://127.0.0.1:7401';
const ROUTING = 'tcp://127.0.0.1:7000';
const PROBE = 'tcp://127.0.0.1:7999';

function message(envelope: PbTypes.IEnvelope): { kind: 'message'; envelope: PbTypes.Envelope } {
  return { kind: 'message', envelope: decodeEnvelope(encodeEnvelope(envelope)) };
}

const sendsTo = (effects: readonly Effect[], to: string): Effect[] => effects.filter((effect) => effect.kind === 'send' && effect.to === to);

/** A node that has started and that its routing node lists alive (ring epoch 7). */
function joinedNode(): StorageNode {
  const node = new StorageNode({ nodeId: 'node-a', address: CONTROL, shardAddresses: [SHARD], routing: [ROUTING] });
  node.handle({ kind: 'start' }, 1000);
  node.handle(message({ sender: ROUTING, ringUpdate: { epoch: 7, nodes: [nodeToWire(node.self())], defaultGlobal: 1, defaultLocal: 1 } }), 1001);
  return node;
}

describe('the storage node control machine', () => {
  it('answers an echo on its control socket, and a request it does not handle with PROTO_UNKNOWN_MESSAGE', () => {
    const node = joinedNode();
    const [echo] = sendsTo(node.handle(message({ requestId: 5, replyTo: PROBE, echo: { payload: Uint8Array.of(1, 2) } }), 1002), PROBE);
    expect(echo?.kind === 'send' && Number(echo.envelope.responseTo)).toBe(5);
    expect(echo?.kind === 'send' ? [...(echo.envelope.echo?.payload ?? [])] : undefined).toEqual([1, 2]);
    const [unknown] = sendsTo(node.handle(message({ requestId: 6, replyTo: PROBE, callRequest: { callId: 'c', function: 'f' } }), 1003), PROBE);
    const error = unknown?.kind === 'send' ? unknown.envelope.errorReply?.error : undefined;
    expect(errorFromWireMessage(error!).code).toBe(ErrorCode.PROTO_UNKNOWN_MESSAGE);
    // A one-way message it does not handle is dropped without an answer.
    expect(node.handle(message({ heartbeat: { nodeId: 'x' } }), 1004)).toEqual([]);
  });

  it('a fresh node whose join was lost joins again when its routing node lists only an older incarnation of it', () => {
    // node-a ran once (incarnation 1), then started again with no ring saved (it had none yet).
    const node = new StorageNode({ nodeId: 'node-a', address: CONTROL, shardAddresses: [SHARD], routing: [ROUTING] });
    const start = node.handle({ kind: 'start' }, 3000);
    expect(sendsTo(start, ROUTING).some((effect) => effect.kind === 'send' && effect.envelope.nodeJoin)).toBe(true);
    // That join was lost; the routing node's ring (a heartbeat's answer) still lists incarnation 1, failed.
    const older = { ...nodeToWire(node.self()), incarnation: 1, departed: true };
    const other = nodeToWire({ id: 'node-b', address: 'tcp://127.0.0.1:7500', shardAddresses: ['tcp://127.0.0.1:7501'], virtualNodes: 64, incarnation: 1, departed: false, metricsPort: 0 });
    const effects = node.handle(message({ sender: ROUTING, ringUpdate: { epoch: 9, nodes: [older, other], defaultGlobal: 1, defaultLocal: 1 } }), 3500);
    const joins = sendsTo(effects, ROUTING).filter((effect) => effect.kind === 'send' && effect.envelope.nodeJoin);
    expect(joins).toHaveLength(1);
    expect(joins[0]!.kind === 'send' ? Number(joins[0]!.envelope.nodeJoin?.node?.incarnation) : undefined).toBe(3000);
    // Once the ring lists this incarnation alive, no more joins.
    const listed = node.handle(message({ sender: ROUTING, ringUpdate: { epoch: 10, nodes: [nodeToWire(node.self()), other], defaultGlobal: 1, defaultLocal: 1 } }), 3600);
    expect(sendsTo(listed, ROUTING).filter((effect) => effect.kind === 'send' && effect.envelope.nodeJoin)).toEqual([]);
  });

  it('a ring update from a stranger draws no join to the stranger and leaves no trace (it did, per sender)', () => {
    const node = joinedNode();
    for (let i = 0; i < 1000; i++) {
      const stranger = `tcp://127.0.0.1:${20_000 + i}`;
      // A ring that does not list this node: from its routing node, that means "join me".
      const effects = node.handle(message({ sender: stranger, ringUpdate: { epoch: 1_000_000 + i, nodes: [] } }), 2000 + i);
      expect(sendsTo(effects, stranger)).toEqual([]);
    }
    // Heartbeats still name the epoch the routing node sent, not a stranger's.
    const beat = node.handle({ kind: 'timer', timer: 'heartbeat' }, 5000);
    const [heartbeat] = sendsTo(beat, ROUTING).filter((effect) => effect.kind === 'send' && effect.envelope.heartbeat);
    expect(heartbeat?.kind === 'send' ? Number(heartbeat.envelope.heartbeat?.ringEpoch) : undefined).toBe(7);
    // The routing node itself still gets a join when its ring does not list this node.
    const fromRouting = node.handle(message({ sender: ROUTING, ringUpdate: { epoch: 8, nodes: [] } }), 6000);
    expect(sendsTo(fromRouting, ROUTING).some((effect) => effect.kind === 'send' && effect.envelope.nodeJoin)).toBe(true);
  });
});
