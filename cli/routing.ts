/**
 * `lfaas routing`: one routing node as its own process (membership, rings, key addresses), with
 * its Prometheus metrics, /healthz and /readyz on `metricsPort` (docs/observability-metrics.md):
 * the ring's size, its members, lookups served, joins, departures and failures detected, read
 * from the machine at each scrape, plus the wire's counters and the process metrics.
 */
import { RoutingNode, startMetricsServer } from '../kvs/index.js';
import type { MetricSample, Readiness } from '../kvs/index.js';
import { bindTransport, runMachine, systemClock } from '../protocol/index.js';
import { announceReady, guardProcess, logError, stopOnSignals } from './process.js';
import { setLogNode } from './log.js';
import { startTracing } from './tracing.js';
import { advertised } from './advertise.js';
import { roleSecurity } from './security.js';
import type { SecurityOptions } from './security.js';
import { wireCountersOf, wireSamples, zapSamples } from './wire-metrics.js';

export interface RoutingProcessOptions extends SecurityOptions {
  readonly host: string;
  /** The host other machines reach this role at (default: `host`; docs/multi-host.md). */
  readonly advertise?: string;
  readonly port: number;
  readonly peers: readonly string[];
  readonly global: number;
  readonly local: number;
  readonly failureTimeoutMs: number;
  /** -1: no metrics server; 0: an ephemeral port (default). */
  readonly metricsPort?: number;
}

/** The routing node's counters as Prometheus counters: field of `RoutingNode.counters` -> name and help. */
const ROUTING_COUNTERS: Readonly<Record<keyof RoutingNode['counters'], readonly [name: string, help: string]>> = {
  joins: ['lfaas_routing_joins_total', 'Storage node joins (and rejoins) this routing node accepted.'],
  departs: ['lfaas_routing_departs_total', 'Storage node departures (graceful) this routing node recorded.'],
  failures: ['lfaas_routing_failures_detected_total', 'Storage nodes declared failed: silent for the failure timeout.'],
  pushes: ['lfaas_routing_ring_pushes_total', 'Ring updates pushed to subscribers and peers.'],
  lookups: ['lfaas_routing_lookups_total', 'Key-address lookups served (keyAddressRequest).'],
  rejected: ['lfaas_routing_lookups_rejected_total', 'Key-address lookups refused (too many keys in one).'],
};

/** The routing node's series at this moment, each labelled with its address. */
export function routingSamples(routing: RoutingNode, node: string): MetricSample[] {
  const labels = { node };
  const counters = routing.counters as Readonly<Record<string, number>>;
  const samples: MetricSample[] = Object.entries(ROUTING_COUNTERS).map(([field, [name, help]]) => ({ name, help, type: 'counter', value: counters[field] ?? 0, labels }));
  const nodes = routing.membership.allNodes();
  const alive = nodes.filter((entry) => !entry.departed);
  samples.push(
    { name: 'lfaas_routing_ring_members', help: 'Storage nodes in the ring, alive (departed or failed ones excluded).', type: 'gauge', value: alive.length, labels },
    { name: 'lfaas_routing_ring_shards', help: 'Shards of the storage nodes alive in the ring.', type: 'gauge', value: alive.reduce((sum, entry) => sum + entry.shardAddresses.length, 0), labels },
    { name: 'lfaas_routing_ring_virtual_nodes', help: 'Points on the hash ring (virtual nodes of the nodes alive).', type: 'gauge', value: alive.reduce((sum, entry) => sum + entry.virtualNodes, 0), labels },
    { name: 'lfaas_routing_ring_departed_members', help: 'Storage nodes the ring lists as departed or failed.', type: 'gauge', value: nodes.length - alive.length, labels },
    { name: 'lfaas_routing_ring_epoch', help: 'Changes of the membership this routing node has seen (its epoch).', type: 'gauge', value: routing.membership.epoch, labels },
  );
  return samples;
}

/**
 * Ready once bound: storage nodes join through it, so it must take traffic before any has joined
 * (a readiness gate on members would keep a Kubernetes Service from ever sending it a join).
 */
function routingReadiness(routing: RoutingNode): Readiness {
  const members = routing.membership.aliveNodes().length;
  return { ready: true, reason: members > 0 ? `${members} storage nodes in the ring` : 'no storage node has joined the ring yet (lookups answer KVS_NO_SERVERS)' };
}

export async function runRouting(options: RoutingProcessOptions): Promise<void> {
  guardProcess('routing');
  const security = roleSecurity('routing', options);
  const transport = await bindTransport({ host: options.host, ...advertised(options), port: options.port, keyPair: security.keyPair });
  setLogNode(transport.address);
  await startTracing({ role: 'routing', node: transport.address });
  const routing = new RoutingNode({
    address: transport.address,
    peers: options.peers,
    defaults: { global: options.global, local: options.local },
    failureTimeoutMs: options.failureTimeoutMs,
  });
  const shell = runMachine(routing, transport, systemClock, { onError: logError(`routing ${transport.address}`), ...security.shell });
  const metricsPort = options.metricsPort ?? 0;
  const metrics =
    metricsPort < 0
      ? undefined
      : await startMetricsServer({
          host: options.host,
          port: metricsPort,
          samples: () => [...routingSamples(routing, transport.address), ...wireSamples(wireCountersOf(shell, transport), { node: transport.address }), ...zapSamples({ node: transport.address })],
          ready: () => routingReadiness(routing),
        });
  announceReady({ role: 'routing', address: transport.address, pid: process.pid, metricsPort: metrics?.port ?? null });
  stopOnSignals(async () => {
    await shell.stop();
    await metrics?.close();
  }, 'routing');
}
