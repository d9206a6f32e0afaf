/**
 * `wire`: our two transports with request/response, each secure and plain: node:net (the default:
 * TLS-PSK `net-tls`, or `net-plain` with `--insecure`) and ZeroMQ (`curve`: CURVE and sealed
 * messages; `plain`), against a minimal raw zeromq echo (the peer baseline), in the same run and
 * under the same conditions (measured in turn at each level). Each echo server is its own OS
 * process (bench/echo-server.ts). Plus msgpack encode/decode of a ~100-byte object.
 */
import { Packr } from 'msgpackr';
import { NetTransport, Rpc, ZmqTransport, systemClock } from '../protocol/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop, opsPerSecond } from './harness/load.js';
import { publish } from './harness/report.js';
import type { Row } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { PAYLOAD, rawClient, startServer } from './echo-peer.js';
import type { Client } from './echo-peer.js';

async function ourClient(address: string, system: Exclude<System, 'raw'>): Promise<Client> {
  const options = { host: '127.0.0.1', port: 0, ...(system === 'plain' || system === 'net-plain' ? { keyPair: 'insecure' as const } : {}) };
  const transport = system === 'net-tls' || system === 'net-plain' ? await NetTransport.bind(options) : await ZmqTransport.bind(options);
  const rpc = new Rpc(transport, systemClock);
  return {
    roundTrip: () => rpc.request(address, { echo: { payload: PAYLOAD } }, { timeoutMs: 10_000 }),
    close: async () => {
      await rpc.close();
      await transport.close();
    },
  };
}

/**
 * raw: a bare zeromq echo; net-tls: our node:net transport as it runs by default (TLS-PSK);
 * net-plain: the same with --insecure; curve: our ZeroMQ transport secure (CURVE, sealed
 * messages); plain: the ZeroMQ transport with --insecure.
 */
const SYSTEMS = ['raw', 'net-tls', 'net-plain', 'curve', 'plain'] as const;
type System = (typeof SYSTEMS)[number];

export const wireBenchmark: Benchmark = async (options) => {
  const sequentialCount = options.quick ? 3000 : 20_000;
  const levelMs = options.quick ? 1500 : 5000;
  const servers = { raw: await startServer('raw'), 'net-tls': await startServer('net-tls'), 'net-plain': await startServer('net-plain'), plain: await startServer('plain'), curve: await startServer('curve') };
  const rows: Row[] = [];
  const ratios: Record<string, number> = {};
  try {
    const clients: Record<System, Client> = {
      raw: await rawClient(servers.raw.address),
      'net-tls': await ourClient(servers['net-tls'].address, 'net-tls'),
      'net-plain': await ourClient(servers['net-plain'].address, 'net-plain'),
      plain: await ourClient(servers.plain.address, 'plain'),
      curve: await ourClient(servers.curve.address, 'curve'),
    };
    // Warm every path (JIT, socket connects, CURVE handshakes).
    for (const system of SYSTEMS) await closedLoop(clients[system].roundTrip, { inFlight: 4, durationMs: 500, maxOperations: 5000 });

    const sequential: Record<string, ReturnType<typeof summarise>> = {};
    for (const system of SYSTEMS) {
      const run = await closedLoop(clients[system].roundTrip, { inFlight: 1, durationMs: 60_000, maxOperations: sequentialCount });
      const summary = summarise(run.latenciesMs);
      sequential[system] = summary;
      rows.push({ test: 'sequential', system, inFlight: 1, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, perSecond: run.perSecond, clientCpu: run.cpuCores });
    }
    ratios['seqP50_plain_over_raw'] = sequential['plain']!.p50Ms / sequential['raw']!.p50Ms;
    ratios['seqP99_plain_over_raw'] = sequential['plain']!.p99Ms / sequential['raw']!.p99Ms;
    ratios['seqP50_curve_over_plain'] = sequential['curve']!.p50Ms / sequential['plain']!.p50Ms;
    ratios['seqP99_curve_over_plain'] = sequential['curve']!.p99Ms / sequential['plain']!.p99Ms;
    ratios['seqP50_curve_over_raw'] = sequential['curve']!.p50Ms / sequential['raw']!.p50Ms;
    ratios['seqP50_netplain_over_raw'] = sequential['net-plain']!.p50Ms / sequential['raw']!.p50Ms;
    ratios['seqP50_nettls_over_netplain'] = sequential['net-tls']!.p50Ms / sequential['net-plain']!.p50Ms;
    ratios['seqP50_nettls_over_raw'] = sequential['net-tls']!.p50Ms / sequential['raw']!.p50Ms;
    ratios['seqP50_nettls_over_curve'] = sequential['net-tls']!.p50Ms / sequential['curve']!.p50Ms;

    for (const inFlight of [1, 4, 16, 64]) {
      const perSecond: Record<string, number> = {};
      for (const system of SYSTEMS) {
        const run = await closedLoop(clients[system].roundTrip, { inFlight, durationMs: levelMs, maxOperations: 5_000_000 });
        const summary = summarise(run.latenciesMs);
        perSecond[system] = run.perSecond;
        rows.push({ test: 'throughput', system, inFlight, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, perSecond: run.perSecond, clientCpu: run.cpuCores });
      }
      ratios[`rps${inFlight}_plain_over_raw`] = perSecond['plain']! / perSecond['raw']!;
      ratios[`rps${inFlight}_curve_over_plain`] = perSecond['curve']! / perSecond['plain']!;
      ratios[`rps${inFlight}_curve_over_raw`] = perSecond['curve']! / perSecond['raw']!;
      ratios[`rps${inFlight}_netplain_over_raw`] = perSecond['net-plain']! / perSecond['raw']!;
      ratios[`rps${inFlight}_nettls_over_netplain`] = perSecond['net-tls']! / perSecond['net-plain']!;
      ratios[`rps${inFlight}_nettls_over_raw`] = perSecond['net-tls']! / perSecond['raw']!;
      ratios[`rps${inFlight}_nettls_over_curve`] = perSecond['net-tls']! / perSecond['curve']!;
    }
    for (const system of SYSTEMS) await clients[system].close();
  } finally {
    for (const server of Object.values(servers)) server.child.kill('SIGTERM');
  }

  const packr = new Packr({ useRecords: false });
  const object = { key: 'user:1234', value: 42, tags: ['a', 'b', 'c'], nested: { ok: true, at: 1_700_000_000_000, name: 'lattice-faas' } };
  const encoded = packr.pack(object);
  const msDuration = options.quick ? 500 : 2000;
  rows.push({ test: `msgpack encode (${encoded.byteLength} B)`, system: 'msgpackr', perSecond: opsPerSecond(() => packr.pack(object), msDuration) });
  rows.push({ test: `msgpack decode (${encoded.byteLength} B)`, system: 'msgpackr', perSecond: opsPerSecond(() => packr.unpack(encoded), msDuration) });

  const measured = (test: string, system: string, inFlight: number, field: string): number =>
    Number(rows.find((row) => row['test'] === test && row['system'] === system && row['inFlight'] === inFlight)?.[field]);
  await publish('wire', options, {
    rows,
    ratios,
    targets: [
      // The transport's own targets (set when it had no security): measured on the plain mode of the default transport (node:net).
      { name: 'sequential p50 ours (plain) / raw', target: '<= 1.25', value: ratios['seqP50_netplain_over_raw']!, met: ratios['seqP50_netplain_over_raw']! <= 1.25, peer: { name: 'raw echo p50 (ms)', value: measured('sequential', 'raw', 1, 'p50Ms') } },
      { name: '64 in flight throughput ours (plain) / raw', target: '>= 2', value: ratios['rps64_netplain_over_raw']!, met: ratios['rps64_netplain_over_raw']! >= 2, peer: { name: 'raw echo round trips/s', value: measured('throughput', 'raw', 64, 'perSecond') } },
      // The cost of security on the ZeroMQ transport: CURVE on every socket and every message sealed, against plain.
      { name: 'sequential p50 CURVE / plain', target: '<= 1.3', value: ratios['seqP50_curve_over_plain']!, met: ratios['seqP50_curve_over_plain']! <= 1.3, peer: { name: 'ZeroMQ plain (--insecure) p50 (ms)', value: measured('sequential', 'plain', 1, 'p50Ms') } },
      { name: '64 in flight throughput CURVE / plain', target: '>= 0.8', value: ratios['rps64_curve_over_plain']!, met: ratios['rps64_curve_over_plain']! >= 0.8, peer: { name: 'ZeroMQ plain (--insecure) round trips/s', value: measured('throughput', 'plain', 64, 'perSecond') } },
      // Issue 17: our transport as it runs by default (node:net, TLS-PSK) against the raw echo.
      { name: '64 in flight throughput ours (encrypted, the default) / raw (issue 17)', target: '>= 1.5', value: ratios['rps64_nettls_over_raw']!, met: ratios['rps64_nettls_over_raw']! >= 1.5, peer: { name: 'raw echo round trips/s', value: measured('throughput', 'raw', 64, 'perSecond') } },
    ],
    notes: [
      'each echo server runs as its own OS process on 127.0.0.1; client and server share the 2 cores',
      'raw = zeromq Dealer/Router echo, no protobuf, no batching, no security',
      'net-tls = our node:net transport as it runs by default: TLS 1.2 ECDHE-PSK-CHACHA20-POLY1305 on both connections of the round trip, the PSK from the two X25519 keys; net-plain = the same with --insecure (plain TCP)',
      'curve = our ZeroMQ transport secure: CURVE on both sockets, ZAP handler, every message sealed (the sender\'s key and a per-pair token, HMAC-SHA256 keyed by the X25519 pair secret) and its seal checked, a batch packed in one part; plain = the ZeroMQ transport with --insecure',
      '"ours" in the targets is the default transport (node:net); the CURVE targets are the ZeroMQ transport\'s',
    ],
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
