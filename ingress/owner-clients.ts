/**
 * One SDK client per caller token, so that what the cluster sees on every request is the caller's
 * own token: an owner reaches only what its token allows, and the ingress has no token of its own
 * to lend. The clients are kept in a bounded LRU (`clientsMax`): the least recently used one is
 * closed when a new token needs room, once the requests using it have finished. Each client binds
 * its own sockets (one for calls, one for the KVS), which is why the bound matters.
 *
 * Connecting is shared: concurrent first requests of one token wait for the same client.
 */
import { LatticeFaas } from '../client/index.js';
import type { KeyPair } from '../protocol/index.js';

export interface OwnerClientsOptions {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  /** The ingress's client key pair (not a member's), or plain mode for an insecure cluster. */
  readonly keyPair: KeyPair | 'insecure';
  readonly host?: string;
  /** The host the cluster answers the clients at (default: `host`). */
  readonly advertise?: string;
  readonly clientsMax: number;
}

interface Entry {
  readonly client: Promise<LatticeFaas>;
  users: number;
  evicted: boolean;
}

export class OwnerClients {
  /** Token -> client, least recently used first (a Map keeps insertion order; a use re-inserts). */
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  readonly counters = { connected: 0, evicted: 0 };

  constructor(private readonly options: OwnerClientsOptions) {}

  /** Runs `body` with the client of `token` ('' on an insecure cluster: no token). */
  async with<T>(token: string, body: (client: LatticeFaas) => Promise<T>): Promise<T> {
    const entry = this.entryOf(token);
    entry.users++;
    try {
      return await body(await entry.client);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) this.closeEntry(entry);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map(async (entry) => (await entry.client.catch(() => undefined))?.close()));
  }

  private entryOf(token: string): Entry {
    const known = this.entries.get(token);
    if (known !== undefined) {
      this.entries.delete(token);
      this.entries.set(token, known);
      return known;
    }
    if (this.closed) throw new Error('the ingress is closing');
    while (this.entries.size >= this.options.clientsMax) {
      const [oldestToken, oldest] = this.entries.entries().next().value!;
      this.entries.delete(oldestToken);
      oldest.evicted = true;
      this.counters.evicted++;
      if (oldest.users === 0) this.closeEntry(oldest);
    }
    const client = LatticeFaas.connect({
      routing: this.options.routing,
      schedulers: this.options.schedulers,
      keyPair: this.options.keyPair,
      token,
      ...(this.options.host === undefined ? {} : { host: this.options.host }),
      ...(this.options.advertise === undefined ? {} : { advertise: this.options.advertise }),
    });
    const entry: Entry = { client, users: 0, evicted: false };
    this.counters.connected++;
    // A failed connect is forgotten, so the next request of the token tries again.
    client.catch(() => {
      if (this.entries.get(token) === entry) this.entries.delete(token);
    });
    this.entries.set(token, entry);
    return entry;
  }

  private closeEntry(entry: Entry): void {
    entry.client.then((client) => client.close()).catch(() => {});
  }
}
