/**
 * The HTTP ingress as a server: the Hono app (app.ts) on a node:http server with the limits that
 * belong to the socket (header size, time to send the headers and the whole request, idle
 * keep-alive connections, so a slowloris client is cut off), the per-token SDK clients
 * (owner-clients.ts), and a health probe (an echo, which needs no token, to a scheduler and a
 * routing node).
 *
 * @example
 * ```ts
 * const ingress = await startIngress({ routing: ['tcp://127.0.0.1:7100#<key>'], schedulers: ['tcp://127.0.0.1:7200#<key>'], port: 7080 });
 * // curl -H "Authorization: Bearer $TOKEN" -d '[7]' http://127.0.0.1:7080/v1/functions/square/call
 * await ingress.stop();
 * ```
 */
import { serve } from '@hono/node-server';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Rpc, bindTransport, clientKeyPair, systemClock } from '../protocol/index.js';
import type { KeyPair, TokenClaims } from '../protocol/index.js';
import { ingressApp } from './app.js';
import type { IngressLimits, IngressState } from './app.js';
import { OwnerClients } from './owner-clients.js';
import { HttpMetrics } from './http-metrics.js';

export const DEFAULT_INGRESS_PORT = 7080;

/** The default limits; each is an option of `lfaas ingress`. */
export const DEFAULT_INGRESS_LIMITS: IngressLimits = {
  bodyBytesMax: 4 * 1024 * 1024,
  urlLengthMax: 8 * 1024,
  keyLengthMax: 1024,
  concurrentMax: 1024,
  requestTimeoutMs: 60_000,
  jsonDepthMax: 64,
  resultWaitMsMax: 30_000,
};

export interface IngressOptions {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  /** The interface the HTTP server binds (127.0.0.1 by default). */
  readonly host?: string;
  /**
   * The cluster-facing sockets (callers' clients, the health probe): the interface they bind
   * (127.0.0.1 by default) and the host the cluster answers them at (default: that interface).
   */
  readonly clusterHost?: string;
  readonly clusterAdvertise?: string;
  /** 0: an ephemeral port. */
  readonly port?: number;
  /** The ingress's client key pair (absent: a fresh one; `insecure`: an --insecure cluster, no tokens asked). */
  readonly keyPair?: KeyPair | 'insecure';
  /** Checks a token with the cluster's public token key before any cluster traffic (UNAUTHORISED otherwise). */
  readonly verifyToken?: (token: string) => TokenClaims;
  readonly limits?: Partial<IngressLimits>;
  /** Callers' clients kept at most (one per token; each binds two sockets). */
  readonly clientsMax?: number;
  /** Header bytes at most (node's default is 16 KiB). */
  readonly headerBytesMax?: number;
  /** Time for a client to send its request headers (and, with a margin, its whole request). */
  readonly headersTimeoutMs?: number;
}

export interface Ingress {
  /** `http://host:port` */
  readonly address: string;
  readonly port: number;
  readonly state: IngressState;
  /** Requests by route, method and status, their durations, and those in flight (http-metrics.ts). */
  readonly httpMetrics: HttpMetrics;
  stop(): Promise<void>;
}

/** How long a health answer is reused: a flood of probes costs the cluster one echo each at most this often. */
const HEALTH_CACHE_MS = 500;
const HEALTH_TIMEOUT_MS = 1000;

/** Starts the ingress; resolves once it listens. */
export async function startIngress(options: IngressOptions): Promise<Ingress> {
  const host = options.host ?? '127.0.0.1';
  const limits: IngressLimits = { ...DEFAULT_INGRESS_LIMITS, ...options.limits };
  const keyPair = options.keyPair ?? clientKeyPair([...options.routing, ...options.schedulers]);
  const clusterSide = { ...(options.clusterHost === undefined ? {} : { host: options.clusterHost }), ...(options.clusterAdvertise === undefined ? {} : { advertise: options.clusterAdvertise }) };
  const clients = new OwnerClients({ routing: options.routing, schedulers: options.schedulers, keyPair, clientsMax: options.clientsMax ?? 64, ...clusterSide });
  // The health probe's own socket: an echo needs no token.
  const probe = new Rpc(await bindTransport({ host: '127.0.0.1', ...clusterSide, port: 0, keyPair }), systemClock, { pendingMax: 64 });
  let cached: { atMs: number; answer: Promise<{ scheduler: boolean; kvs: boolean }> } | undefined;
  const anyAnswers = async (addresses: readonly string[]): Promise<boolean> => {
    const answers = await Promise.allSettled(addresses.slice(0, 8).map((address) => probe.request(address, { echo: {} }, { timeoutMs: HEALTH_TIMEOUT_MS })));
    return answers.some((outcome) => outcome.status === 'fulfilled');
  };
  const health = (): Promise<{ scheduler: boolean; kvs: boolean }> => {
    const now = Date.now();
    if (cached === undefined || now - cached.atMs > HEALTH_CACHE_MS) {
      cached = { atMs: now, answer: Promise.all([anyAnswers(options.schedulers), anyAnswers(options.routing)]).then(([scheduler, kvs]) => ({ scheduler, kvs })) };
    }
    return cached.answer;
  };
  const state: IngressState = {
    clients,
    limits,
    verifyToken: keyPair === 'insecure' ? null : options.verifyToken,
    health,
    counters: { requests: 0, refusedBusy: 0, timedOut: 0, errors: 0 },
    inFlight: 0,
  };
  const app = ingressApp(state);
  const headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve(
      {
        fetch: app.fetch,
        hostname: host,
        port: options.port ?? DEFAULT_INGRESS_PORT,
        serverOptions: {
          maxHeaderSize: options.headerBytesMax ?? 16 * 1024,
          headersTimeout: headersTimeoutMs,
          // The whole request (headers and body) must arrive within this; a call's own time is not counted.
          requestTimeout: headersTimeoutMs + 60_000,
          keepAliveTimeout: 5_000,
          // How often node looks for connections past those timeouts (its default, 30 s, would let a slowloris client linger).
          connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
        },
      },
      () => resolve(started as Server),
    ) as Server;
    started.once('error', reject);
  });
  // Every request is counted and timed when its response ends (or its connection closes first).
  const httpMetrics = new HttpMetrics();
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const startedAt = performance.now();
    httpMetrics.started();
    response.once('close', () => httpMetrics.finished(request.url ?? '/', request.method ?? 'GET', response.writableFinished ? response.statusCode : 0, performance.now() - startedAt));
  });
  // Connections at most: beyond the concurrency limit, a connection costs a socket and nothing else.
  server.maxConnections = Math.max(64, limits.concurrentMax * 2);
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Malformed HTTP, headers too large or too slow: a bare status, and the socket closed.
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });
  const port = (server.address() as AddressInfo).port;
  let stopping: Promise<void> | undefined;
  return {
    address: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    state,
    httpMetrics,
    stop: () =>
      (stopping ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await clients.close();
        await probe.close();
        await probe.transport.close();
      })()),
  };
}
