/**
 * `wire`: our ZeroMQ transport with request/response against a minimal raw zeromq echo, in the
 * same run and under the same conditions (the two are measured alternately at each level). Each
 * echo server is its own OS process (bench/echo-server.ts). Plus msgpack encode/decode of a
 * ~100-byte object.
 */
import { Packr } from 'msgpackr';
import { Rpc, ZmqTransport, systemClock } from '../protocol/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop, opsPerSecond } from './harness/load.js';
import { publish } from './harness/report.js';
import type { Row } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { PAYLOAD, rawClient, startServer } from './echo-peer.js';
import type { Client } from './echo-peer.js';

async function ourClient(address: string): Promise<Client> {
  const transport = await ZmqTransport.bind({ host: '127.0.0.1', port: 0 });
  const rpc = new Rpc(transport, systemClock);
  return {
    roundTrip: () => rpc.request(address, { echo: { payload: PAYLOAD } }, { timeoutMs: 10_000 }),
    close: async () => {
      await rpc.close();
      await transport.close();
    },
  };
}

export const wireBenchmark: Benchmark = async (options) => {
  const sequentialCount = options.quick ? 3000 : 20_000;
  const levelMs = options.quick ? 1500 : 5000;
  const servers = { raw: await startServer('raw'), ours: await startServer('ours') };
  const rows: Row[] = [];
  const ratios: Record<string, number> = {};
  try {
    const clients = { raw: await rawClient(servers.raw.address), ours: await ourClient(servers.ours.address) };
    // Warm both paths (JIT, socket connects).
    for (const system of ['raw', 'ours'] as const) await closedLoop(clients[system].roundTrip, { inFlight: 4, durationMs: 500, maxOperations: 5000 });

    const sequential: Record<string, ReturnType<typeof summarise>> = {};
    for (const system of ['raw', 'ours'] as const) {
      const run = await closedLoop(clients[system].roundTrip, { inFlight: 1, durationMs: 60_000, maxOperations: sequentialCount });
      const summary = summarise(run.latenciesMs);
      sequential[system] = summary;
      rows.push({ test: 'sequential', system, inFlight: 1, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, perSecond: run.perSecond, clientCpu: run.cpuCores });
    }
    ratios['seqP50_ours_over_raw'] = sequential['ours']!.p50Ms / sequential['raw']!.p50Ms;
    ratios['seqP99_ours_over_raw'] = sequential['ours']!.p99Ms / sequential['raw']!.p99Ms;

    for (const inFlight of [1, 4, 16, 64]) {
      const perSecond: Record<string, number> = {};
      for (const system of ['raw', 'ours'] as const) {
        const run = await closedLoop(clients[system].roundTrip, { inFlight, durationMs: levelMs, maxOperations: 5_000_000 });
        const summary = summarise(run.latenciesMs);
        perSecond[system] = run.perSecond;
        rows.push({ test: 'throughput', system, inFlight, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, perSecond: run.perSecond, clientCpu: run.cpuCores });
      }
      ratios[`rps${inFlight}_ours_over_raw`] = perSecond['ours']! / perSecond['raw']!;
    }
    await clients.raw.close();
    await clients.ours.close();
  } finally {
    for (const server of Object.values(servers)) server.child.kill('SIGTERM');
  }

  const packr = new Packr({ useRecords: false });
  const object = { key: 'user:1234', value: 42, tags: ['a', 'b', 'c'], nested: { ok: true, at: 1_700_000_000_000, name: 'lattice-faas' } };
  const encoded = packr.pack(object);
  const msDuration = options.quick ? 500 : 2000;
  rows.push({ test: `msgpack encode (${encoded.byteLength} B)`, system: 'msgpackr', perSecond: opsPerSecond(() => packr.pack(object), msDuration) });
  rows.push({ test: `msgpack decode (${encoded.byteLength} B)`, system: 'msgpackr', perSecond: opsPerSecond(() => packr.unpack(encoded), msDuration) });

  await publish('wire', options, {
    rows,
    ratios,
    targets: [
      { name: 'sequential p50 ours / raw', target: '<= 1.25', value: ratios['seqP50_ours_over_raw']!, met: ratios['seqP50_ours_over_raw']! <= 1.25 },
      { name: '64 in flight throughput ours / raw', target: '>= 2', value: ratios['rps64_ours_over_raw']!, met: ratios['rps64_ours_over_raw']! >= 2 },
    ],
    notes: ['each echo server runs as its own OS process on 127.0.0.1; client and server share the 2 cores', 'raw = zeromq Dealer/Router echo, no protobuf, no batching'],
    plot: {
      rows: rows.filter((row) => row['test'] === 'throughput'),
      spec: {
        title: 'wire: round trips per second by requests in flight',
        width: 420,
        height: 260,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'inFlight', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'requests in flight' },
          y: { field: 'perSecond', type: 'quantitative', title: 'round trips / s' },
          color: { field: 'system', type: 'nominal' },
        },
      },
    },
  });
};
