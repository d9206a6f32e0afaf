/**
 * `lfaas ingress`: the HTTP ingress (ingress/) as its own process. It is a client of the cluster,
 * not a member: it binds with a fresh client key pair (CURVE, like any SDK client) and acts for
 * each caller with the caller's own owner token. With `--keys`, a token that does not verify with
 * the cluster's public token key (`token.pub`, re-read when it changes) is refused 401 before any
 * cluster traffic; with `--insecure` (a plain cluster on loopback) no token is asked.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startIngress } from '../ingress/index.js';
import type { IngressLimits } from '../ingress/index.js';
import { generateKeyPair } from '../protocol/index.js';
import { announceReady, guardProcess, stopOnSignals } from './process.js';
import { FolderTokenVerifier, TOKEN_PUBLIC_FILE } from './token-trust.js';

export interface IngressProcessOptions {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  readonly host: string;
  readonly port: number;
  readonly keys?: string;
  readonly insecure?: boolean;
  readonly bodyLimitMb: number;
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
  readonly clientsMax: number;
  readonly headersTimeoutMs: number;
}

export async function runIngressProcess(options: IngressProcessOptions): Promise<void> {
  guardProcess('ingress');
  const insecure = options.insecure === true;
  if (!insecure && options.keys === undefined) throw new Error('ingress: no keys: pass --keys <folder> (its token.pub verifies callers\' tokens), or --insecure for a plain cluster on loopback');
  const verifier = !insecure && options.keys !== undefined && existsSync(join(options.keys, TOKEN_PUBLIC_FILE)) ? new FolderTokenVerifier(options.keys) : undefined;
  const limits: Partial<IngressLimits> = { bodyBytesMax: Math.round(options.bodyLimitMb * 1024 * 1024), concurrentMax: options.concurrency, requestTimeoutMs: options.requestTimeoutMs };
  const ingress = await startIngress({
    routing: options.routing,
    schedulers: options.schedulers,
    host: options.host,
    port: options.port,
    keyPair: insecure ? 'insecure' : generateKeyPair(),
    ...(verifier === undefined ? {} : { verifyToken: (token: string) => verifier.verify(token) }),
    limits,
    clientsMax: options.clientsMax,
    headersTimeoutMs: options.headersTimeoutMs,
  });
  announceReady({ role: 'ingress', address: ingress.address, port: ingress.port, pid: process.pid, tokens: insecure ? 'none' : verifier === undefined ? 'cluster' : 'verified' });
  stopOnSignals(() => ingress.stop(), 'ingress');
}
