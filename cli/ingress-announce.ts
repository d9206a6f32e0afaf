/**
 * The ingress's announcement of itself to the routing nodes (discovery, docs/multi-host.md): its
 * public HTTP URL, `http://<advertise or host>:<port>` (ingressUrl), sent every period on a small transport of
 * its own bound with the ingress member key (`ingress.key` of the keys folder), so the routing
 * nodes list it and `faas.services()` / `lfaas services` find it. The key proves the role
 * (message-rights.ts: an ingress key announces an ingress and sends nothing else); the ingress's
 * cluster traffic goes on as before, on a client key with each caller's token.
 *
 * Not announcing is never fatal: a keys folder made before the ingress role (no `ingress.key`, or
 * the key not listed under `ingress`: run `lfaas keys init <folder>` again to add it) or a URL no
 * caller can reach (no `--advertise` and no address to choose) is warned about once and the
 * ingress serves as before. With `--insecure` the announcement goes plain, like every role's.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ANNOUNCE_PERIOD_MS, ServiceAnnouncer } from '../client/index.js';
import { bindTransport, advertisedHost, isServiceUrl, keyText, readKeyPair, readMembers } from '../protocol/index.js';
import type { KeyPair } from '../protocol/index.js';

/** The key file the ingress announces with: `<keys>/ingress.key`. */
export const INGRESS_KEY_NAME = 'ingress';

export interface IngressAnnounceOptions {
  readonly routing: readonly string[];
  readonly keys?: string;
  readonly insecure?: boolean;
  /** The interface the HTTP server binds. */
  readonly host: string;
  /** Where callers and the cluster reach this machine, when not `host`. */
  readonly advertise?: string;
  /** The HTTP port bound. */
  readonly port: number;
  /** Told once why the ingress is not announced. */
  readonly warn: (message: string) => void;
  readonly periodMs?: number;
}

export interface IngressAnnouncement {
  /** The URL announced, or undefined when not announcing. */
  readonly url?: string;
  /** Says the ingress departs and closes the transport. */
  stop(): Promise<void>;
}

/**
 * The URL callers reach an ingress at: `http://<host>:<port>`, the host chosen like every role's
 * advertised host (`--advertise`, else `--host`, else for a wildcard the machine's first
 * non-loopback interface address; an IPv6 host in brackets). Undefined when there is none.
 */
export function ingressUrl(host: string, port: number, advertise?: string): string | undefined {
  let chosen: string;
  try {
    chosen = advertisedHost(host, advertise);
  } catch {
    return undefined;
  }
  const url = `http://${chosen}:${port}`;
  return isServiceUrl(url) ? url : undefined;
}

/** The ingress member key, or why there is none to announce with. */
function memberKey(keys: string): KeyPair | string {
  if (!existsSync(join(keys, `${INGRESS_KEY_NAME}.key`))) return `${keys} has no ${INGRESS_KEY_NAME}.key (a keys folder made before the ingress role: \`lfaas keys init ${keys}\` adds it)`;
  let pair: KeyPair;
  let listed: readonly string[];
  try {
    pair = readKeyPair(keys, INGRESS_KEY_NAME);
    listed = readMembers(keys).members.ingress;
  } catch (error) {
    return (error as Error).message;
  }
  if (!listed.includes(keyText(pair.publicKey))) return `${INGRESS_KEY_NAME}.key is not listed under "ingress" in ${keys}/members.json (\`lfaas keys init ${keys}\` lists it)`;
  return pair;
}

/** Starts announcing the ingress (see the file comment); a missing or unreadable key is warned about, not thrown. */
export async function announceIngress(options: IngressAnnounceOptions): Promise<IngressAnnouncement> {
  const quiet: IngressAnnouncement = { stop: async () => {} };
  const url = ingressUrl(options.host, options.port, options.advertise);
  if (url === undefined) {
    options.warn(`ingress: not announced to the routing nodes: no URL a caller can reach at ${options.advertise ?? options.host}:${options.port} (pass --advertise <host>)`);
    return quiet;
  }
  let keyPair: KeyPair | 'insecure';
  if (options.insecure === true) keyPair = 'insecure';
  else if (options.keys === undefined) return quiet;
  else {
    const key = memberKey(options.keys);
    if (typeof key === 'string') {
      options.warn(`ingress: not announced to the routing nodes: ${key}`);
      return quiet;
    }
    keyPair = key;
  }
  const transport = await bindTransport({ host: options.advertise === undefined ? '127.0.0.1' : options.host, ...(options.advertise === undefined ? {} : { advertise: options.advertise }), port: 0, keyPair });
  const announcer = new ServiceAnnouncer(transport, options.routing, 'ingress', url, options.periodMs ?? ANNOUNCE_PERIOD_MS, transport.address);
  return {
    url,
    stop: async () => {
      await announcer.stop();
      await transport.close();
    },
  };
}
