/**
 * A KVS cluster for benchmarks: a routing node and storage nodes as their own processes (the
 * built CLI), a temporary data folder, and our client; stopped by pid. Secure (CURVE, keys made
 * in the data folder) as a cluster runs by default, or plain with `insecure` (every role
 * `--insecure`: no CURVE, no sealed messages; the client sees addresses without keys and talks plain).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvsClient } from '../client/index.js';
import { ADMIN_TOKEN_FILE, keysInit, startRole, stopChildren, waitForRing } from '../cli/index.js';
import type { Started } from '../cli/index.js';

export interface BenchCluster {
  readonly routing: string;
  /** The cluster's keys folder (a role started beside it uses it); '' for an insecure cluster. */
  readonly keys: string;
  /** 'encrypted' (the default: TLS-PSK on the node:net transport, CURVE on ZeroMQ) or 'plain' (`--insecure`). */
  readonly security: 'encrypted' | 'plain';
  readonly processes: readonly Started[];
  readonly client: KvsClient;
  stop(): Promise<void>;
}

/**
 * A bench cluster's security: secure, as a cluster runs by default (keys made in `data`; the
 * bench's clients and readiness probes present the admin token, through LFAAS_TOKEN), or with
 * `insecure` no keys (`keys` is ''). `security`: the flags each role takes.
 */
export function benchKeys(data: string, insecure: boolean): { keys: string; security: readonly string[] } {
  if (insecure) return { keys: '', security: ['--insecure'] };
  const keys = join(data, 'keys');
  keysInit(keys);
  process.env['LFAAS_TOKEN'] = readFileSync(join(keys, ADMIN_TOKEN_FILE), 'utf8').trim();
  return { keys, security: ['--keys', keys] };
}

export async function startBenchCluster(options: { nodes: number; shards: number; replication: number; storageArgs?: readonly string[]; insecure?: boolean }): Promise<BenchCluster> {
  const data = mkdtempSync(join(tmpdir(), 'lfaas-bench-'));
  const processes: Started[] = [];
  const stop = async (): Promise<void> => {
    await stopChildren(processes.map((started) => started.child));
    rmSync(data, { recursive: true, force: true });
  };
  try {
    const insecure = options.insecure === true;
    const { keys, security } = benchKeys(data, insecure);
    const routing = await startRole(['routing', ...security, '--global', String(options.replication)], 'routing');
    processes.push(routing);
    const address = String(routing.ready['address']);
    for (let n = 0; n < options.nodes; n++) {
      processes.push(await startRole(['kvs', ...security, '--id', `bench-${n}`, '--routing', address, '--shards', String(options.shards), '--data', data, '--metrics-port', '-1', ...(options.storageArgs ?? [])], `storage node ${n}`));
    }
    const client = await KvsClient.connect({ routing: [address], requestTimeoutMs: 2000 });
    // Until every node is in the ring the client would be sent to fewer shards.
    await waitForRing([address], processes.slice(1).flatMap((started) => started.ready['shards'] as string[]));
    return {
      routing: address,
      keys,
      security: insecure ? 'plain' : 'encrypted',
      processes,
      client,
      stop: async () => {
        await client.close();
        await stop();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
