/**
 * Membership and the hash rings.
 *
 * - {@link Membership} is itself a lattice: node id -> (incarnation, departed, info); a later
 *   incarnation wins, and within one incarnation "departed" wins. Routing nodes, storage nodes and
 *   clients merge every ring update they receive, so updates may arrive late, twice or out of
 *   order and everyone still converges on one membership (and so on one ring).
 * - The global ring places *nodes* (each with `virtualNodes` points); inside a node the local ring
 *   places its *shards*. A key's replicas: the first `global` distinct nodes clockwise from the
 *   key's hash, and inside each the first `local` distinct shards clockwise from a second hash.
 * - Per-key replication factors override the cluster defaults; they are an LWW map merged with
 *   the membership, so every node holds the replication metadata.
 *
 * The hash is FNV-1a over the key's UTF-8 bytes with the murmur3 finaliser: stable across
 * processes, versions and platforms (never a language's built-in hash).
 */
import { compareTimestamps } from '../lattices/index.js';
import type { Timestamp } from '../lattices/index.js';
import type { PbTypes } from '../protocol/index.js';

const encoder = new TextEncoder();

/** A stable 32-bit hash of a string. */
export function stableHash(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) ascii = text.charCodeAt(i) < 0x80;
  if (ascii) {
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  } else {
    // Non-ASCII: hash the UTF-8 bytes, so the hash is a function of the encoded key.
    for (const byte of encoder.encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The seed of the local (shard) ring's hash, so local placement is independent of global. */
const LOCAL_SEED = 0x9e3779b9;

/** A storage node as the rings see it (the wire `NodeInfo`, normalised). */
export interface RingNode {
  readonly id: string;
  readonly address: string;
  readonly shardAddresses: readonly string[];
  readonly virtualNodes: number;
  readonly incarnation: number;
  readonly departed: boolean;
  readonly metricsPort: number;
}

/** Replication factors: nodes per key, shards per key inside each node. */
export interface ReplicationFactors {
  readonly global: number;
  readonly local: number;
}

interface FactorEntry extends ReplicationFactors {
  readonly setAt: Timestamp;
}

export const DEFAULT_VIRTUAL_NODES = 64;

/**
 * Bounds on what a membership holds. Until members authenticate, any sender can
 * put nodes and factors in a ring update or a join, and every ring change is pushed to every
 * storage node, shard and subscriber: without bounds, one frame of 100 000 nodes (or one node of
 * 100 000 shards) became a ring of megabytes, pushed and merged again every heartbeat, forever.
 * Every replica applies the same rules, so they agree on what is refused.
 */
export const MEMBERSHIP_LIMITS = {
  /** Shards a node may list (`lfaas kvs --shards` allows 64): a node listing more is ignored. */
  shardsPerNodeMax: 64,
  /** The longest node id, in UTF-16 units: a node with a longer one is ignored. */
  nodeIdLengthMax: 256,
  /** The longest key of a per-key replication factor: a longer one is ignored (a shard refuses such keys anyway). */
  factorKeyLengthMax: 1024,
  /**
   * Node states held at most. A new node beyond it evicts the departed node that changed longest
   * ago (a departed node is in no ring; if a stale alive copy of it arrives later, it is failed
   * again by its missed heartbeats); with none departed, the new node is ignored.
   */
  nodesMax: 1024,
  /** Per-key replication factors held at most; new keys beyond it are ignored (existing ones still change). */
  factorsMax: 10_000,
  /**
   * The size of what is held (ids, addresses, keys, and a little per entry), at most: well below
   * the 16 MiB frame limit, so a ring always fits in a ring update. A new node or factor beyond it
   * is treated as beyond `nodesMax` or `factorsMax`.
   */
  bytesMax: 4 * 1024 * 1024,
} as const;

/** The largest peer epoch adopted: far below 2^53, so local changes can count on from it for ever. */
export const EPOCH_ADOPTED_MAX = 2 ** 48;

/** The bytes a node state counts for against `bytesMax` (about its encoded size). */
function nodeBytes(node: RingNode): number {
  return 32 + node.id.length + node.address.length + node.shardAddresses.reduce((sum, address) => sum + address.length + 2, 0);
}

/** The bytes a replication factor counts for against `bytesMax`. */
function factorBytes(key: string): number {
  return 32 + key.length;
}

export function nodeFromWire(info: PbTypes.INodeInfo): RingNode {
  return {
    id: info.id ?? '',
    address: info.address ?? '',
    shardAddresses: [...(info.shardAddresses ?? [])],
    virtualNodes: Math.min(1024, Math.max(1, info.virtualNodes ?? DEFAULT_VIRTUAL_NODES)),
    incarnation: Number(info.incarnation ?? 0),
    departed: info.departed === true,
    metricsPort: info.metricsPort ?? 0,
  };
}

export function nodeToWire(node: RingNode): PbTypes.INodeInfo {
  return {
    id: node.id,
    tier: 1,
    address: node.address,
    shardAddresses: [...node.shardAddresses],
    virtualNodes: node.virtualNodes,
    incarnation: node.incarnation,
    departed: node.departed,
    metricsPort: node.metricsPort,
  };
}

/**
 * True when `a` is a later state of a node than `b`: a later incarnation; in one incarnation,
 * departed over alive; and, so that the merge is a lattice even for two different descriptions
 * of one incarnation (which a correct node never sends), the larger description.
 */
function nodeAfter(a: RingNode, b: RingNode): boolean {
  if (a.incarnation !== b.incarnation) return a.incarnation > b.incarnation;
  if (a.departed !== b.departed) return a.departed;
  return describe(a) > describe(b);
}

function describe(node: RingNode): string {
  return `${node.address}|${node.shardAddresses.join(',')}|${node.virtualNodes}|${node.metricsPort}`;
}

/**
 * The membership lattice plus the replication metadata; `merge` is associative, commutative and
 * idempotent. `epoch` counts the changes this copy has seen (a hint for logs and cheap
 * comparisons, not part of the lattice).
 */
export class Membership {
  /** In order of last change: eviction takes the departed node that changed longest ago. */
  private readonly nodes = new Map<string, RingNode>();
  private readonly factors = new Map<string, FactorEntry>();
  epoch = 0;
  private ringCache: HashRing | undefined;
  /** What the bounds of MEMBERSHIP_LIMITS refused or evicted (metrics, tests). */
  readonly counters = { nodesRefused: 0, nodesEvicted: 0, factorsRefused: 0 };
  /** The bytes held, as `bytesMax` counts them. */
  private bytes = 0;

  /** The cluster's default factors: set by the routing nodes' configuration, carried by every update. */
  defaults: ReplicationFactors;

  constructor(defaults: ReplicationFactors) {
    this.defaults = defaults;
  }

  /** Merges a ring update; true when anything changed. */
  merge(update: PbTypes.IRingUpdate): boolean {
    let changed = false;
    const global = update.defaultGlobal ?? 0;
    const local = update.defaultLocal ?? 0;
    if (global > 0 && local > 0 && (global !== this.defaults.global || local !== this.defaults.local)) {
      this.defaults = { global, local };
      changed = true;
    }
    for (const wire of update.nodes ?? []) {
      const node = nodeFromWire(wire);
      if (node.id.length === 0) continue;
      if (node.id.length > MEMBERSHIP_LIMITS.nodeIdLengthMax || node.shardAddresses.length > MEMBERSHIP_LIMITS.shardsPerNodeMax) {
        this.counters.nodesRefused++;
        continue;
      }
      const current = this.nodes.get(node.id);
      if (current === undefined || nodeAfter(node, current)) {
        if (current === undefined && !this.roomForNode(nodeBytes(node))) {
          this.counters.nodesRefused++;
          continue;
        }
        // A later state of a node already held always replaces it (its size differs a little at most).
        if (current !== undefined) this.bytes -= nodeBytes(current);
        this.nodes.delete(node.id);
        this.nodes.set(node.id, node);
        this.bytes += nodeBytes(node);
        changed = true;
      }
    }
    for (const wire of update.replication ?? []) {
      const key = wire.key ?? '';
      const setAt = { wallMs: Number(wire.setAt?.wallMs ?? 0), logical: wire.setAt?.logical ?? 0 };
      const entry: FactorEntry = { global: Math.max(1, wire.global ?? 1), local: Math.max(1, wire.local ?? 1), setAt };
      const current = this.factors.get(key);
      if (key.length === 0 || (current !== undefined && !factorAfter(entry, current))) continue;
      const full = this.factors.size >= MEMBERSHIP_LIMITS.factorsMax || this.bytes + factorBytes(key) > MEMBERSHIP_LIMITS.bytesMax;
      if (key.length > MEMBERSHIP_LIMITS.factorKeyLengthMax || (current === undefined && full)) {
        this.counters.factorsRefused++;
        continue;
      }
      if (current === undefined) this.bytes += factorBytes(key);
      this.factors.set(key, entry);
      changed = true;
    }
    if (changed) {
      // A peer's epoch is adopted (a restarted routing node catches up), but not one so large
      // that counting on from it would pass 2^53, which no receiver accepts: a ring update of
      // epoch 2^53 - 1 once made every later ring and lookup answer undecodable, for good.
      const remote = Number(update.epoch ?? 0);
      this.epoch = Math.max(this.epoch + 1, remote <= EPOCH_ADOPTED_MAX ? remote : 0);
      this.ringCache = undefined;
    }
    return changed;
  }

  /**
   * Whether a new node of `size` bytes fits below `nodesMax` and `bytesMax`, evicting departed
   * nodes, the one that changed longest ago first, to make room.
   */
  private roomForNode(size: number): boolean {
    const fits = (): boolean => this.nodes.size < MEMBERSHIP_LIMITS.nodesMax && this.bytes + size <= MEMBERSHIP_LIMITS.bytesMax;
    if (fits()) return true;
    if (size > MEMBERSHIP_LIMITS.bytesMax) return false;
    for (const [id, node] of this.nodes) {
      if (!node.departed) continue;
      this.nodes.delete(id);
      this.bytes -= nodeBytes(node);
      this.counters.nodesEvicted++;
      if (fits()) return true;
    }
    return false;
  }

  /** Adds or replaces one node state (a join, a depart, a failure); true when it changed. */
  upsert(node: RingNode): boolean {
    return this.merge({ nodes: [nodeToWire(node)] });
  }

  /** Sets a key's replication factors at `setAt`; true when it changed. */
  setFactors(key: string, factors: ReplicationFactors, setAt: Timestamp): boolean {
    return this.merge({ replication: [{ key, tier: 1, global: factors.global, local: factors.local, setAt }] });
  }

  node(id: string): RingNode | undefined {
    return this.nodes.get(id);
  }

  /** Every node state, departed ones included. */
  allNodes(): RingNode[] {
    return [...this.nodes.values()];
  }

  aliveNodes(): RingNode[] {
    return [...this.nodes.values()].filter((node) => !node.departed);
  }

  factorsOf(key: string): ReplicationFactors {
    return this.factors.get(key) ?? this.defaults;
  }

  /** The ring of the alive nodes (cached until the membership changes). */
  ring(): HashRing {
    this.ringCache ??= new HashRing(this.aliveNodes(), this);
    return this.ringCache;
  }

  toWire(): PbTypes.IRingUpdate {
    return {
      epoch: this.epoch,
      nodes: [...this.nodes.values()].map(nodeToWire),
      replication: [...this.factors].map(([key, entry]) => ({ key, tier: 1, global: entry.global, local: entry.local, setAt: entry.setAt })),
      defaultGlobal: this.defaults.global,
      defaultLocal: this.defaults.local,
    };
  }
}

function factorAfter(a: FactorEntry, b: FactorEntry): boolean {
  const order = compareTimestamps(a.setAt, b.setAt);
  if (order !== 0) return order > 0;
  // Same time (two routing nodes set it at once): a deterministic tie-break.
  return a.global !== b.global ? a.global > b.global : a.local > b.local;
}

/** Points on a ring: sorted hashes and the owner index of each. */
interface Points {
  readonly hashes: Uint32Array;
  readonly owners: Uint32Array;
}

function buildPoints(entries: readonly { readonly name: string; readonly weight: number }[]): Points {
  const points: [number, number][] = [];
  entries.forEach((entry, owner) => {
    for (let v = 0; v < entry.weight; v++) points.push([stableHash(`${entry.name}#${v}`), owner]);
  });
  // Ties (a 32-bit collision) are broken by owner, so every process builds the same ring.
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return { hashes: Uint32Array.from(points, (p) => p[0]), owners: Uint32Array.from(points, (p) => p[1]) };
}

/** The first `count` distinct owners clockwise from `hash`. */
function walk(points: Points, hash: number, count: number, ownersTotal: number): number[] {
  const { hashes, owners } = points;
  const found: number[] = [];
  if (hashes.length === 0) return found;
  let low = 0;
  let high = hashes.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (hashes[mid]! < hash) low = mid + 1;
    else high = mid;
  }
  const wanted = Math.min(count, ownersTotal);
  for (let step = 0; step < hashes.length && found.length < wanted; step++) {
    const owner = owners[(low + step) % hashes.length]!;
    if (!found.includes(owner)) found.push(owner);
  }
  return found;
}

/** The global ring of alive nodes, each with its local ring of shards. Immutable. */
export class HashRing {
  private readonly global: Points;
  private readonly locals: Points[];
  private readonly nodes: readonly RingNode[];

  constructor(
    nodes: readonly RingNode[],
    private readonly factors: { factorsOf(key: string): ReplicationFactors },
  ) {
    // Sorted by id so the owner indexes (and the tie-breaks) are the same in every process.
    this.nodes = [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.global = buildPoints(this.nodes.map((node) => ({ name: node.id, weight: node.virtualNodes })));
    this.locals = this.nodes.map((node) => buildPoints(node.shardAddresses.map((_, shard) => ({ name: `${node.id}/${shard}`, weight: 16 }))));
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** The nodes holding `key`, in ring order (the first is its "primary"). */
  nodesOf(key: string): RingNode[] {
    const { global } = this.factors.factorsOf(key);
    return walk(this.global, stableHash(key), global, this.nodes.length).map((index) => this.nodes[index]!);
  }

  /** The shard addresses holding `key`: for each of its nodes, its `local` shards. */
  replicasOf(key: string): string[] {
    const { global, local } = this.factors.factorsOf(key);
    const addresses: string[] = [];
    const localHash = stableHash(key, LOCAL_SEED);
    for (const index of walk(this.global, stableHash(key), global, this.nodes.length)) {
      const node = this.nodes[index]!;
      for (const shard of walk(this.locals[index]!, localHash, local, node.shardAddresses.length)) addresses.push(node.shardAddresses[shard]!);
    }
    return addresses;
  }

  /** The node that owns a shard address, if any. */
  nodeOfShard(address: string): RingNode | undefined {
    return this.nodes.find((node) => node.shardAddresses.includes(address));
  }
}
