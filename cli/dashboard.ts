/**
 * `lfaas dashboard`: the live dashboard (dashboard/) as its own process, a role of `lfaas up`.
 *
 * - It asks the cluster's statistics with the monitor's member key (`--keys <folder>`,
 *   `monitor.key`: only monitor members may send ClusterStatsRequest), and reads the registry and
 *   the monitor's event log as the admin (the admin token: LFAAS_TOKEN, else `admin.token` in the
 *   keys folder).
 * - Its API needs the admin token, verified with the cluster's token key (`token.pub`, re-read
 *   when it changes: cli/token-trust.ts, as the ingress does). It binds 127.0.0.1 unless `--host`
 *   says otherwise. Its OTLP trace receiver takes spans from loopback, or with the admin token.
 * - The cluster's addresses: `--routing`/`--schedulers`, or `--state <file>` (`lfaas up`'s
 *   `.lfaas/cluster.json`), read each round until it exists: `up` starts the dashboard before the
 *   other roles so that it receives their spans, and writes that file once they are ready.
 * - `--insecure` (a plain cluster on loopback): no token asked for the API; warned about.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readClusterFile } from '../client/index.js';
import { startDashboard } from '../dashboard/index.js';
import type { ClusterAddresses } from '../dashboard/index.js';
import { ADMIN_TOKEN_FILE } from './keys-commands.js';
import { announceReady, guardProcess, stopOnSignals } from './process.js';
import { roleSecurity } from './security.js';
import { FolderTokenVerifier } from './token-trust.js';

export interface DashboardProcessOptions {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  /** `lfaas up`'s state file, read for the addresses when none are given. */
  readonly state?: string;
  readonly host: string;
  readonly port: number;
  readonly keys?: string;
  readonly insecure?: boolean;
  readonly periodMs: number;
  readonly traceBodyLimitMb: number;
}

/** The addresses given, else those of the state file once it exists. */
function addressesOf(options: DashboardProcessOptions): () => ClusterAddresses | undefined {
  if (options.routing.length > 0) return () => ({ routing: options.routing, schedulers: options.schedulers });
  let found: ClusterAddresses | undefined;
  return () => {
    if (found !== undefined || options.state === undefined || !existsSync(options.state)) return found;
    try {
      const file = readClusterFile(options.state);
      found = { routing: file.routing, schedulers: file.schedulers };
    } catch {
      // Being written: the next round reads it again.
    }
    return found;
  };
}

export async function runDashboardProcess(options: DashboardProcessOptions): Promise<void> {
  guardProcess('dashboard');
  const insecure = options.insecure === true;
  if (options.routing.length === 0 && options.state === undefined) throw new Error('dashboard: no cluster: pass --routing and --schedulers, or --state <.lfaas/cluster.json>');
  const security = roleSecurity('monitor', { ...(options.keys === undefined ? {} : { keys: options.keys }), keyName: 'monitor', insecure });
  let adminToken: string | undefined;
  let verifyToken: ReturnType<typeof verifierOf>;
  if (insecure) {
    process.stderr.write('WARNING: dashboard --insecure: its API asks no token: anyone who can reach its port sees the cluster\'s names and numbers\n');
    verifyToken = null;
  } else {
    const keys = options.keys!;
    adminToken = process.env['LFAAS_TOKEN'] || (existsSync(join(keys, ADMIN_TOKEN_FILE)) ? readFileSync(join(keys, ADMIN_TOKEN_FILE), 'utf8').trim() : undefined);
    verifyToken = verifierOf(keys);
  }
  const dashboard = await startDashboard({
    cluster: addressesOf(options),
    memberKeyPair: security.keyPair,
    adminToken,
    verifyToken,
    host: options.host,
    port: options.port,
    periodMs: options.periodMs,
    traceBodyBytesMax: Math.round(options.traceBodyLimitMb * 1024 * 1024),
  });
  announceReady({ role: 'dashboard', address: dashboard.address, port: dashboard.port, pid: process.pid, tokens: insecure ? 'none' : 'admin' });
  stopOnSignals(() => dashboard.stop(), 'dashboard');
}

function verifierOf(keys: string): ((token: string) => ReturnType<FolderTokenVerifier['verify']>) | null {
  const verifier = new FolderTokenVerifier(keys);
  return (token) => verifier.verify(token);
}
