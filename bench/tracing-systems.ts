/**
 * Tracing's overhead in the compose bench (docs/observability-tracing.md): the same local
 * cluster as `lattice-faas`, but every role started with the OpenTelemetry SDK on (an OTLP
 * endpoint in its environment, LFAAS_TRACE_SAMPLE at the given ratio), exporting to a tiny
 * OTLP/HTTP receiver on 127.0.0.1 that accepts and counts. The bench's client registers no SDK:
 * each call's trace starts at the scheduler (or at the executor, for direct calls), sampled there.
 * The `lattice-faas` rows (no SDK: the default) are tracing off.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { startFaasBenchCluster } from './faas-cluster.js';
import type { FaasBenchCluster } from './faas-cluster.js';

/** An OTLP/HTTP receiver that accepts every export and counts requests and bytes. */
export interface CountingReceiver {
  readonly url: string;
  readonly counts: { requests: number; bytes: number };
  stop(): Promise<void>;
}

export async function startCountingReceiver(): Promise<CountingReceiver> {
  const counts = { requests: 0, bytes: 0 };
  const server: Server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => (counts.bytes += chunk.byteLength));
    request.on('end', () => {
      counts.requests++;
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the OTLP receiver has no port');
  return { url: `http://127.0.0.1:${address.port}/v1/traces`, counts, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const TRACE_ENV = ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'LFAAS_TRACE_SAMPLE'] as const;

/** The bench cluster with every role tracing at `sample`, exporting to `receiver` (the environment is restored after the start). */
export async function startTracedCluster(receiver: CountingReceiver, sample: number): Promise<FaasBenchCluster> {
  const saved = TRACE_ENV.map((name) => process.env[name]);
  process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] = receiver.url;
  process.env['LFAAS_TRACE_SAMPLE'] = String(sample);
  try {
    return await startFaasBenchCluster({ executors: 2, workers: 4 });
  } finally {
    TRACE_ENV.forEach((name, index) => {
      const value = saved[index];
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    });
  }
}
