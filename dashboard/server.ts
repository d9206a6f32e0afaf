/**
 * The dashboard's HTTP server (node:http): the built page, its JSON API, and an OTLP/HTTP trace
 * receiver.
 *
 * Routes:
 * - `GET /`, `/app.js`, `/app.css`: the page (built by scripts/bundle-dashboard.js into
 *   dist/dashboard-web; no external URL: a Content-Security-Policy of 'self' only). No token: the
 *   page holds no data.
 * - `GET /api/state`: the collector's latest snapshot; `GET /api/traces/<trace id>`: one trace's
 *   spans. Both need the admin token as `Authorization: Bearer <token>` (verified with the
 *   cluster's token key, like the ingress: 401 without a valid one, 403 without the admin right).
 *   The page polls /api/state every second.
 * - `POST /v1/traces`: an ExportTraceServiceRequest in OTLP JSON (`Content-Type:
 *   application/json`; 415 otherwise), at most `traceBodyBytesMax` (413 beyond), malformed: 400
 *   with a typed error. Accepted from loopback peers (the cluster's own roles, which `lfaas up`
 *   points here) without a token; from any other peer only with the admin token (so a dashboard
 *   bound beyond loopback takes no spans from strangers).
 *
 * Errors are JSON `{ "error": { "code", "message" } }` with an lfaas ErrorCode. With
 * `verifyToken: null` (an --insecure cluster, on loopback) no token is asked anywhere: a warning
 * is printed by the command that asks for it. The server shows names and numbers, never values.
 * Sockets are bounded: header and request time limits, idle keep-alive connections closed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, LfaasError, isLfaasError } from '../lattices/index.js';
import type { TokenClaims } from '../protocol/index.js';
import { Collector } from './collector.js';
import type { CollectorOptions } from './collector.js';
import { TraceStore, parseOtlpTraces } from './traces.js';

export const DEFAULT_DASHBOARD_PORT = 7081;
const TRACES_LISTED_MAX = 50;

export interface DashboardOptions extends CollectorOptions {
  /** The interface to bind (127.0.0.1 by default). */
  readonly host?: string;
  /** 0: an ephemeral port. */
  readonly port?: number;
  /** Verifies a token (throws UNAUTHORISED); `null`: an insecure cluster, no token asked. */
  readonly verifyToken: ((token: string) => TokenClaims) | null;
  /** The built page's folder (default: dist/dashboard-web next to this module's folder). */
  readonly assetsDir?: string;
  readonly traceBodyBytesMax?: number;
  readonly tracesMax?: number;
  readonly traceBytesMax?: number;
}

export interface Dashboard {
  /** `http://host:port` */
  readonly address: string;
  readonly port: number;
  readonly collector: Collector;
  readonly traces: TraceStore;
  stop(): Promise<void>;
}

class HttpError extends LfaasError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

const ASSETS: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
} as const;

/** The built page's folder: dist/dashboard-web, whether this module runs from dist/ or from the sources. */
export function defaultAssetsDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [join(here, '..', 'dashboard-web'), join(here, '..', 'dist', 'dashboard-web')];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[0]!;
}

const isLoopback = (address: string | undefined): boolean => address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));

function bearerOf(request: IncomingMessage): string | undefined {
  const header = request.headers['authorization'];
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S{1,4096})[ \t]*$/i.exec(header);
  if (match === null) throw new HttpError(401, ErrorCode.UNAUTHORISED, 'token refused: the Authorization header must be "Bearer <admin token>"');
  return match[1];
}

/** Reads the body, at most `max` bytes (413 beyond, without reading the rest). */
function readBody(request: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? -1);
  if (declared > max) return Promise.reject(new HttpError(413, ErrorCode.PROTO_TOO_LARGE, `the body is ${declared} bytes, more than ${max}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > max) {
        reject(new HttpError(413, ErrorCode.PROTO_TOO_LARGE, `the body is more than ${max} bytes`));
        request.pause();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store', ...extra });
  response.end(body);
}

function sendError(response: ServerResponse, error: unknown): void {
  const typed = error instanceof HttpError ? error : isLfaasError(error) ? new HttpError(error.code === ErrorCode.UNAUTHORISED ? 401 : 400, error.code, error.message) : new HttpError(500, ErrorCode.INTERNAL, 'internal error');
  const extra: Record<string, string> = typed.status === 401 ? { 'www-authenticate': 'Bearer' } : {};
  if (typed.status === 413) extra['connection'] = 'close';
  send(response, typed.status, JSON.stringify({ error: { code: typed.code, message: typed.message.slice(0, 500) } }), 'application/json', extra);
}

/** Starts the collector and the server; resolves once it listens. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const assetsDir = options.assetsDir ?? defaultAssetsDir();
  const traceBodyBytesMax = options.traceBodyBytesMax ?? 4 * 1024 * 1024;
  const traces = new TraceStore(options.tracesMax ?? 200, options.traceBytesMax ?? 8 * 1024 * 1024);
  const collector = new Collector(options);
  const assets = new Map<string, Buffer>();
  const asset = (file: string): Buffer => {
    let content = assets.get(file);
    if (content === undefined) {
      try {
        content = readFileSync(join(assetsDir, file));
      } catch (error) {
        throw new HttpError(404, ErrorCode.KVS_KEY_NOT_FOUND, `${file} is not built (npm run build makes ${assetsDir}): ${(error as Error).message}`);
      }
      assets.set(file, content);
    }
    return content;
  };
  /** The admin's token checked (nothing asked when insecure). */
  const authorise = (request: IncomingMessage): void => {
    if (options.verifyToken === null) return;
    const token = bearerOf(request);
    if (token === undefined) throw new HttpError(401, ErrorCode.UNAUTHORISED, 'token refused: none was presented (Authorization: Bearer <admin token>; open the page as /#token=<admin token>)');
    const claims = options.verifyToken(token);
    if (!claims.rights.includes('admin')) throw new HttpError(403, ErrorCode.UNAUTHORISED, `token refused: the dashboard is for the admin; ${claims.owner}'s token has no admin right`);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://dashboard');
    const path = url.pathname;
    const method = request.method ?? 'GET';
    if (path === '/v1/traces') {
      if (method !== 'POST') throw new HttpError(405, ErrorCode.PROTO_MALFORMED, 'POST an OTLP JSON ExportTraceServiceRequest here');
      if (!isLoopback(request.socket.remoteAddress)) authorise(request);
      const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') throw new HttpError(415, ErrorCode.PROTO_MALFORMED, `traces are accepted as application/json (OTLP/HTTP JSON), not ${JSON.stringify(type.slice(0, 100))}`);
      const body = await readBody(request, traceBodyBytesMax);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8')) as unknown;
      } catch (error) {
        throw new HttpError(400, ErrorCode.PROTO_MALFORMED, `OTLP traces: the body is not JSON (${(error as Error).message.slice(0, 200)})`);
      }
      traces.add(parseOtlpTraces(parsed));
      send(response, 200, '{"partialSuccess":{}}', 'application/json');
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, ErrorCode.PROTO_MALFORMED, `${method.slice(0, 20)} is not served here`);
    if (path === '/favicon.ico') {
      response.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const page = ASSETS[path];
    if (page !== undefined) {
      send(response, 200, asset(page.file), page.type, { 'cache-control': 'no-cache' });
      return;
    }
    if (path === '/api/state') {
      authorise(request);
      const snapshot = collector.snapshot();
      const recent = traces.recent(TRACES_LISTED_MAX).map(({ spans: _spans, ...summary }) => summary);
      send(response, 200, JSON.stringify({ ...snapshot, traces: recent, tracesHeld: traces.size }), 'application/json');
      return;
    }
    const traceMatch = /^\/api\/traces\/([0-9a-f]{32})$/.exec(path);
    if (traceMatch !== null) {
      authorise(request);
      const trace = traces.recent(Number.MAX_SAFE_INTEGER).find((view) => view.traceId === traceMatch[1]);
      if (trace === undefined) throw new HttpError(404, ErrorCode.KVS_KEY_NOT_FOUND, `no trace ${traceMatch[1]} is kept (the most recent ${options.tracesMax ?? 200} are)`);
      send(response, 200, JSON.stringify(trace), 'application/json');
      return;
    }
    throw new HttpError(404, ErrorCode.KVS_KEY_NOT_FOUND, `nothing at ${path.slice(0, 200)}`);
  };

  const server: Server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5000, maxHeaderSize: 16 * 1024 }, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendError(response, error);
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: options.port ?? DEFAULT_DASHBOARD_PORT }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  collector.start();
  const port = (server.address() as AddressInfo).port;
  return {
    address: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    collector,
    traces,
    stop: async () => {
      await collector.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
