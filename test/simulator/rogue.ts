/**
 * A rogue for simulations with membership modelled: a machine added with no role (so not a
 * member) that sends the cluster's own messages, the ones message-rights.ts keeps for members, to
 * `targets` every `periodMs`: a node join, a ring change, a heartbeat, statistics, gossip, a
 * replica write, an executor's heartbeat claiming every function warm. Each must be refused (the
 * shells count it); had one got through, the ring or the schedulers' view would show it.
 */
import { pb } from '../../protocol/index.js';
import type { Effect, Machine, PbTypes } from '../../protocol/index.js';

const TICK = 'rogue';

export function rogue(address: string, targets: readonly string[], periodMs = 100): Machine {
  let sent = 0;
  const forged = (): PbTypes.IEnvelope[] => [
    { sender: address, nodeJoin: { node: { id: 'rogue', tier: pb.Tier.TIER_MEMORY, address, shardAddresses: [address], virtualNodes: 64, incarnation: 1e6 } } },
    { sender: address, ringUpdate: { epoch: 2 ** 40, nodes: [{ id: 'rogue', tier: pb.Tier.TIER_MEMORY, address, shardAddresses: [address] }] } },
    { sender: address, heartbeat: { nodeId: 'rogue' } },
    { sender: address, statsReport: { nodeId: 'rogue', shard: 0, keyCount: 1 } },
    { sender: address, gossip: { fromNode: address, tuples: [] } },
    { sender: address, kvsRequest: { kind: pb.RequestKind.DELETE, fromReplica: true, tuples: [{ key: 'k0' }] } },
    { sender: address, executorStatus: { executorId: 'rogue', address, utilisation: 0, capacity: 64, warmFunctions: Array.from({ length: 8 }, (_, i) => `f${i}@1`) } },
  ];
  return {
    id: address,
    handle(input): readonly Effect[] {
      if (input.kind === 'start') return [{ kind: 'timer', timer: TICK, delayMs: periodMs }];
      if (input.kind !== 'timer' || input.timer !== TICK) return [];
      sent++;
      const effects: Effect[] = [{ kind: 'timer', timer: TICK, delayMs: periodMs }];
      for (const to of targets) for (const envelope of forged()) effects.push({ kind: 'send', to, envelope: { ...envelope, requestId: sent, replyTo: address } });
      return effects;
    },
  };
}
