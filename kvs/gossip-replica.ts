/**
 * A replica of a map of lattices that converges by gossip: the first, smallest storage machine,
 * which the simulator and `lfaas up --demo` run, and from which the storage shard of the KVS
 * grows. It is a sans-I/O machine: it sees envelopes and time, and returns effects.
 *
 * - `kvsRequest` PUT merges each tuple into the local value (a different lattice type under a key
 *   is a per-tuple KVS_LATTICE_MISMATCH and writes nothing); GET answers the merged value.
 * - Every `gossipPeriodMs`, the keys changed since the last round go to every peer, in batches.
 * - Every `antiEntropyPeriodMs`, the whole state goes to one peer (round robin): this repairs lost
 *   gossip and brings a restarted, empty replica up to date. Merges are ACI, so duplicated,
 *   reordered or stale gossip is harmless.
 * - `onMerge` sees every changed key: a shell can persist it (the simulator uses it as the disk).
 */
import { ErrorCode, LfaasError, decodeLattice, ensureLfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { envelopeWith, errorToWire, pb } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes } from '../protocol/index.js';

export interface GossipReplicaOptions {
  readonly id: string;
  /** This replica's own address (reply_to of its messages). */
  readonly address: string;
  /** The other replicas' addresses. */
  readonly peers: readonly string[];
  readonly gossipPeriodMs?: number;
  readonly antiEntropyPeriodMs?: number;
  /** Keys per gossip message, at most. */
  readonly gossipBatchKeysMax?: number;
  /** The state to start from (what survived a restart). */
  readonly initial?: ReadonlyMap<string, AnyLattice>;
  /** Called with every key whose value changed, after the merge. */
  readonly onMerge?: (key: string, value: AnyLattice) => void;
}

const GOSSIP_TIMER = 'gossip';
const ANTI_ENTROPY_TIMER = 'anti-entropy';

export class GossipReplica implements Machine {
  readonly id: string;
  private readonly values = new Map<string, AnyLattice>();
  private readonly changed = new Set<string>();
  private nextPeer = 0;
  private readonly gossipPeriodMs: number;
  private readonly antiEntropyPeriodMs: number;
  private readonly batchKeysMax: number;
  /** Counters for tests and logs. */
  readonly counters = { puts: 0, gets: 0, gossipSent: 0, gossipReceived: 0, rejected: 0 };

  constructor(private readonly options: GossipReplicaOptions) {
    this.id = options.id;
    this.gossipPeriodMs = options.gossipPeriodMs ?? 50;
    this.antiEntropyPeriodMs = options.antiEntropyPeriodMs ?? 1000;
    this.batchKeysMax = options.gossipBatchKeysMax ?? 256;
    for (const [key, value] of options.initial ?? []) this.values.set(key, value);
  }

  /** The current value of a key. */
  get(key: string): AnyLattice | undefined {
    return this.values.get(key);
  }

  /** Every key and value (a copy). */
  snapshot(): Map<string, AnyLattice> {
    return new Map(this.values);
  }

  handle(input: MachineInput, _nowMs: number): readonly Effect[] {
    switch (input.kind) {
      case 'start':
        return [
          { kind: 'timer', timer: GOSSIP_TIMER, delayMs: this.gossipPeriodMs },
          { kind: 'timer', timer: ANTI_ENTROPY_TIMER, delayMs: this.antiEntropyPeriodMs },
        ];
      case 'timer':
        return input.timer === GOSSIP_TIMER ? this.gossipRound() : this.antiEntropyRound();
      case 'message':
        return this.onMessage(input.envelope);
      case 'persisted':
        return [];
    }
  }

  private onMessage(envelope: Envelope): Effect[] {
    switch (envelope.body) {
      case 'kvsRequest':
        return this.onRequest(envelope, envelope.kvsRequest as PbTypes.KvsRequest);
      case 'gossip':
        this.counters.gossipReceived++;
        for (const tuple of envelope.gossip?.tuples ?? []) {
          try {
            this.mergeTuple(tuple);
          } catch {
            this.counters.rejected++;
          }
        }
        return [];
      default:
        this.counters.rejected++;
        return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `a replica does not handle ${envelope.body ?? 'nothing'}`)) } });
    }
  }

  private onRequest(envelope: Envelope, request: PbTypes.KvsRequest): Effect[] {
    const tuples = request.tuples.map((tuple): PbTypes.IKeyTuple => {
      const key = tuple.key ?? '';
      try {
        if (request.kind === pb.RequestKind.PUT) {
          this.counters.puts++;
          this.mergeTuple(tuple);
          return { key };
        }
        if (request.kind === pb.RequestKind.GET) {
          this.counters.gets++;
          const value = this.values.get(key);
          if (value === undefined) throw new LfaasError(ErrorCode.KVS_KEY_NOT_FOUND, `no key ${JSON.stringify(key)}`);
          return { key, latticeType: value.type, payload: value.encode() };
        }
        throw new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, 'a replica handles GET and PUT');
      } catch (error) {
        return { key, error: errorToWire(ensureLfaasError(error)) };
      }
    });
    return this.reply(envelope, { kvsResponse: { tuples } });
  }

  private reply(request: Envelope, body: PbTypes.IEnvelope): Effect[] {
    // Requests from the simulator's clients carry no reply address; nothing to answer.
    if (Number(request.requestId) === 0 || request.replyTo.length === 0) return [];
    return [{ kind: 'send', to: request.replyTo, envelope: envelopeWith(body, { responseTo: request.requestId, sender: this.options.address }) }];
  }

  /** Merges one tuple; throws a typed error (and changes nothing) on a bad payload or type. */
  private mergeTuple(tuple: PbTypes.IKeyTuple): void {
    const key = tuple.key ?? '';
    if (key.length === 0) throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'empty key');
    const incoming = decodeLattice(tuple.payload ?? new Uint8Array());
    if (tuple.latticeType !== undefined && tuple.latticeType !== null && tuple.latticeType !== 0 && tuple.latticeType !== incoming.type) {
      throw new LfaasError(ErrorCode.LATTICE_DECODE, `tuple says type ${tuple.latticeType}, payload is ${incoming.type}`);
    }
    const current = this.values.get(key);
    if (current !== undefined && current.type !== incoming.type) {
      throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `key ${JSON.stringify(key)} holds type ${current.type}, got ${incoming.type}`);
    }
    const merged = current === undefined ? incoming : (current.merge(incoming) as AnyLattice);
    if (current !== undefined && merged.equals(current)) return;
    this.values.set(key, merged);
    this.changed.add(key);
    this.options.onMerge?.(key, merged);
  }

  private tuplesOf(keys: Iterable<string>): PbTypes.IKeyTuple[] {
    const tuples: PbTypes.IKeyTuple[] = [];
    for (const key of keys) {
      const value = this.values.get(key);
      if (value !== undefined) tuples.push({ key, latticeType: value.type, payload: value.encode() });
    }
    return tuples;
  }

  private batches(keys: readonly string[], to: readonly string[]): Effect[] {
    const effects: Effect[] = [];
    for (let start = 0; start < keys.length; start += this.batchKeysMax) {
      const tuples = this.tuplesOf(keys.slice(start, start + this.batchKeysMax));
      for (const peer of to) {
        this.counters.gossipSent++;
        effects.push({ kind: 'send', to: peer, envelope: { sender: this.options.address, gossip: { fromNode: this.id, tuples } } });
      }
    }
    return effects;
  }

  private gossipRound(): Effect[] {
    const keys = [...this.changed].sort();
    this.changed.clear();
    return [...this.batches(keys, this.options.peers), { kind: 'timer', timer: GOSSIP_TIMER, delayMs: this.gossipPeriodMs }];
  }

  private antiEntropyRound(): Effect[] {
    const effects: Effect[] = [{ kind: 'timer', timer: ANTI_ENTROPY_TIMER, delayMs: this.antiEntropyPeriodMs }];
    if (this.options.peers.length === 0 || this.values.size === 0) return effects;
    const peer = this.options.peers[this.nextPeer++ % this.options.peers.length] as string;
    return [...this.batches([...this.values.keys()].sort(), [peer]), ...effects];
  }
}
