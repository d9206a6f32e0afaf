/**
 * A seeded wire fuzzer for every role's socket (issue 9, "hostile input": a frame,
 * value or request can cost its sender, never the node).
 *
 * It makes the frames; test/fuzz.test.ts sends them with raw ZeroMQ DEALER sockets (not through our
 * transport, which validates) to every socket of a real cluster and checks, after each phase, that
 * every process is alive, answers an echo within 1 s and still serves a KVS put/get and a call.
 *
 * Six phases, each a lazy stream of sends (a frame, or an array of frames sent as one multipart
 * ZeroMQ message) per target socket:
 * - `random-bytes`: garbage of edge lengths: 0, 1, small, around protobuf varint boundaries (127,
 *   128, 16 383, 16 384, 2 097 151, 2 097 152), at the 16 MiB frame limit and one byte above it;
 *   uniform noise, constant bytes, plausible protobuf tags, and noise behind a valid header that
 *   names our listener (so the refusal path that answers a typed error runs too).
 * - `mangled-envelopes`: valid envelopes of random body types, truncated at a random point,
 *   bit-flipped, spliced, or with a varint continuation bomb written into them.
 * - `hostile-bodies`: for every body type of the schema (`BODY_TYPES`, walked generically with
 *   `describeFields` and `MESSAGE_SCHEMA`, so a new message type is covered the day it is added),
 *   structurally valid envelopes whose fields hold hostile values: empty and huge strings,
 *   ill-formed UTF-16, huge lists (up to and beyond the 100 000 list limit), 0 / 2^32-1 / 2^53-1 /
 *   2^53 numbers, NaN and infinite doubles, unknown enum numbers, random bytes and msgpack bombs in
 *   lattice payloads, values and function code, `lfaas/` keys, self-referencing addresses.
 * - `hostile-addresses`: requests whose `reply_to` (and every address-typed field) is hostile
 *   (`tcp://*:5555`, `tcp://-:1`, `tcp://é:1`, port 0 or 65536, `ipc://x`, empty, very long...),
 *   and more than 1 100 distinct unreachable `tcp://127.0.0.1:<20000+i>` reply addresses, to
 *   exhaust a node's outbound socket cache.
 * - `floods`: multipart messages of thousands of frames, and bursts of single frames.
 * - `dns-reply-addresses`: hundreds of echo requests whose reply addresses are distinct DNS names
 *   that do not resolve (`tcp://fuzz-<i>.invalid:<port>`). ZeroMQ resolves a name in its one I/O
 *   thread, again at every reconnection: while the resolver waits, every socket of the process
 *   waits. Last, so that the phases before it report on their own.
 *
 * What the fuzzer does not forge: the identity of a member (a real node id, executor address or
 * function name in a position that changes membership, registration or deletion). Without
 * the planned member keys (ZeroMQ CURVE, not built yet) any sender may join, depart, register
 * and delete, and a forged member is a trust bug, not a wire bug; the checks after each phase need
 * the real members intact. One such gap is opt-in (`forgeMembership`): alive fake nodes in ring
 * updates sent to shards and storage nodes, which believe any ring update (off by default;
 * `LFAAS_FUZZ_FORGE=1` in test/fuzz.test.ts).
 */
import { Counter, GSet, HybridClock, Lww, Max } from '../../lattices/index.js';
import { BODY_TYPES, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_LIST_LENGTH, MESSAGE_SCHEMA, describeFields, encodeValue, pb, seededRandom } from '../../protocol/index.js';
import type { FieldDescription, MessageTypeName, PbTypes, Random } from '../../protocol/index.js';

/** The role behind a socket. */
export type Role = 'routing' | 'shard' | 'storage' | 'scheduler' | 'executor';

/** One socket to fuzz; `name` is stable across runs (addresses are not), so a seed replays. */
export interface FuzzTarget {
  readonly name: string;
  readonly role: Role;
  readonly address: string;
}

export interface FuzzEnvironment {
  /** Where the fuzzer's requests ask to be answered (a socket the test reads). */
  readonly listener: string;
  /** Every role socket of the cluster (self-referencing reply addresses). */
  readonly cluster: readonly string[];
  /** Functions registered in the cluster: called and prepared with hostile arguments, never re-registered or deleted. */
  readonly functions: readonly string[];
  /** Alive fake nodes in ring updates to shards and storage nodes too (off: see the file comment). */
  readonly forgeMembership?: boolean;
  /** A valid client token: most frames carry it (so they reach the machines), some a hostile one. */
  readonly token?: string;
}

/** One ZeroMQ message: a single frame, or several frames sent as one multipart message. */
export type FuzzSend = Uint8Array | readonly Uint8Array[];

/** The phases, in the order the test runs them. */
export const PHASES = ['random-bytes', 'mangled-envelopes', 'hostile-bodies', 'hostile-addresses', 'floods', 'dns-reply-addresses'] as const;
export type PhaseName = (typeof PHASES)[number];

/** How much of everything, per phase and target. */
export interface FuzzScale {
  readonly randomFrames: number;
  /** Frame lengths at the 16 MiB limit sent to every target (each costs ~16 MiB of traffic). */
  readonly edgeLengths: readonly number[];
  readonly mangledFrames: number;
  /** Hostile envelopes per body type. */
  readonly framesPerBodyType: number;
  /** Frames carrying a list at and beyond the list limit (100 000 and 100 001 entries). */
  readonly hugeListFrames: number;
  /** Distinct unreachable reply addresses (above ZeroMQ's default of 1 023 sockets per context). */
  readonly distinctReplyAddresses: number;
  /** Distinct reply addresses whose host is a DNS name that does not resolve. */
  readonly dnsReplyAddresses: number;
  readonly multipartMessages: number;
  readonly multipartParts: number;
  readonly burstFrames: number;
}

const MiB = 1024 * 1024;

/** CI: the whole test file stays well under a minute on two cores. */
export const QUICK_SCALE: FuzzScale = {
  randomFrames: 150,
  edgeLengths: [DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES + 1],
  mangledFrames: 150,
  framesPerBodyType: 3,
  hugeListFrames: 2,
  distinctReplyAddresses: 1200,
  dnsReplyAddresses: 300,
  multipartMessages: 2,
  multipartParts: 1000,
  burstFrames: 3000,
};

/** LFAAS_LONG=1: minutes. */
export const LONG_SCALE: FuzzScale = {
  randomFrames: 3000,
  edgeLengths: [DEFAULT_MAX_FRAME_BYTES - 1, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES + 1, DEFAULT_MAX_FRAME_BYTES + 4096],
  mangledFrames: 4000,
  framesPerBodyType: 40,
  hugeListFrames: 12,
  distinctReplyAddresses: 1500,
  dnsReplyAddresses: 600,
  multipartMessages: 8,
  multipartParts: 10_000,
  burstFrames: 60_000,
};

/**
 * Reply addresses no node can or should connect to: bind wildcards, bad hosts and ports, other
 * transports, empty, very long, unresolvable, non-routable, a closed port.
 */
export const HOSTILE_ADDRESSES: readonly string[] = [
  'tcp://*:5555',
  'tcp://-:1',
  'tcp://é:1',
  'tcp://127.0.0.1:0',
  'tcp://127.0.0.1:65536',
  'tcp://127.0.0.1:99999',
  'tcp://127.0.0.1:-1',
  'tcp://127.0.0.1:01',
  'ipc://x',
  'inproc://x',
  'udp://127.0.0.1:1',
  'TCP://127.0.0.1:1',
  '',
  'tcp://',
  'tcp://:1',
  'tcp://a:b:1',
  'tcp://_x:1',
  'tcp://0.0.0.0:1',
  'tcp://[::]:1',
  'tcp://[::1]:1',
  'tcp://localhost:1',
  'tcp://fuzz-unresolvable.invalid:1',
  'tcp://fuzz-unresolvable.invalid:1#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  'tcp://127.0.0.1:1#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  'tcp://127.0.0.1:1#AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB',
  'tcp://127.0.0.1:1#short',
  'tcp://127.0.0.1:1#',
  'tcp://10.255.255.1:1',
  'tcp://127.0.0.1:1',
  ' tcp://127.0.0.1:1',
  'tcp://127.0.0.1:1\u0000',
  'tcp://127.0.0.1:1\n',
  'mem://fuzz',
  `tcp://${'a'.repeat(300)}:1`,
  `tcp://${'a.'.repeat(200)}a:1`,
  `tcp://${'a'.repeat(70_000)}:1`,
];

/** The first port of the distinct unreachable reply addresses (below Linux's ephemeral range). */
export const UNREACHABLE_PORT_BASE = 20_000;
/** A well-formed key for made-up addresses (nodes send only to keyed ones): 32 zero bytes. */
export const FUZZ_KEY = `#${'A'.repeat(43)}`;

/**
 * The bodies each role handles: the fuzzer sends every body type to every role, and these a little
 * more often, so the handlers (not only the refusal of an unknown message) see hostile values.
 */
export const HANDLED: Readonly<Record<Role, readonly string[]>> = {
  routing: ['nodeJoin', 'heartbeat', 'nodeDepart', 'ringUpdate', 'ringRequest', 'keyAddressRequest', 'statsReport', 'serviceAnnounce', 'servicesRequest', 'echo'],
  shard: ['kvsRequest', 'gossip', 'digestExchange', 'ringUpdate', 'subscribe', 'unsubscribe', 'echo'],
  storage: ['ringUpdate', 'nodeDepart', 'echo'],
  scheduler: ['callRequest', 'dagCall', 'executorStatus', 'registerFunction', 'registerDag', 'listFunctions', 'deleteFunction', 'listDags', 'deleteDag', 'pinCounts', 'echo'],
  executor: ['schedule', 'trigger', 'invocationMessage', 'versionRequest', 'prepare', 'runFinished', 'echo'],
};

/** Request ids of fuzz frames start here; the test's own probes use ids below it. */
export const FUZZ_REQUEST_ID_BASE = 2 ** 32;

/** Bytes of encoded frames in a send. */
export function sendBytes(send: FuzzSend): number {
  return send instanceof Uint8Array ? send.byteLength : send.reduce((sum, frame) => sum + frame.byteLength, 0);
}

/** Frames in a send. */
export function sendFrames(send: FuzzSend): number {
  return send instanceof Uint8Array ? 1 : send.length;
}

/**
 * The frame generator. Each (phase, target) pair draws from its own generator, seeded from the
 * fuzzer's seed, the phase and the target's name: one pair replays without the others.
 *
 * @example
 * ```ts
 * const fuzzer = new WireFuzzer(1234, QUICK_SCALE, { listener, cluster, functions: ['echo'] });
 * for (const send of fuzzer.sends('hostile-bodies', { name: 'routing', role: 'routing', address })) await push.send(send);
 * ```
 */
export class WireFuzzer {
  constructor(
    readonly seed: number,
    readonly scale: FuzzScale,
    private readonly env: FuzzEnvironment,
  ) {}

  /** The sends of one phase to one target, generated lazily (huge frames are made one at a time). */
  *sends(phase: PhaseName, target: FuzzTarget): Generator<FuzzSend> {
    const random = seededRandom(mix(this.seed, PHASES.indexOf(phase) + 1, hashText(target.name)));
    const values = new ValueMaker(random, this.env, target);
    switch (phase) {
      case 'random-bytes':
        yield* this.randomBytes(random, values);
        return;
      case 'mangled-envelopes':
        yield* this.mangled(random, values);
        return;
      case 'hostile-bodies':
        yield* this.hostileBodies(random, values, target);
        return;
      case 'hostile-addresses':
        yield* this.hostileAddresses(random, values, target);
        return;
      case 'floods':
        yield* this.floods(random, values, target);
        return;
      case 'dns-reply-addresses':
        yield* this.dnsReplyAddresses(values);
        return;
    }
  }

  // ---- phase (a) ------------------------------------------------------------------------------

  private *randomBytes(random: Random, values: ValueMaker): Generator<FuzzSend> {
    const lengths = [0, 1, 2, 3, 5, 8, 13, 127, 128, 129, 255, 256, 16_383, 16_384, 16_385, 65_535, 65_536, 2_097_151, 2_097_152];
    for (let i = 0; i < this.scale.randomFrames; i++) {
      const length = i < lengths.length ? lengths[i]! : random.chance(0.7) ? random.int(64) : random.int(8192);
      yield values.garbage(length);
    }
    for (const length of this.scale.edgeLengths) yield values.garbage(length, true);
  }

  // ---- phase (b) ------------------------------------------------------------------------------

  private *mangled(random: Random, values: ValueMaker): Generator<FuzzSend> {
    const bodies = Object.keys(BODY_TYPES);
    let previous: Uint8Array | undefined;
    for (let i = 0; i < this.scale.mangledFrames; i++) {
      const body = random.pick(bodies);
      const frame = values.envelope(body, 0, random.chance(0.8) ? 'request' : 'oneway');
      if (frame === undefined) continue;
      yield mangle(random, frame, previous);
      previous = frame;
    }
  }

  // ---- phase (c) ------------------------------------------------------------------------------

  private *hostileBodies(random: Random, values: ValueMaker, target: FuzzTarget): Generator<FuzzSend> {
    const handled = new Set(HANDLED[target.role]);
    for (const body of Object.keys(BODY_TYPES)) {
      const count = handled.has(body) ? this.scale.framesPerBodyType * 2 : this.scale.framesPerBodyType;
      for (let i = 0; i < count; i++) {
        // Mostly valid with a few hostile fields (so the handler runs), sometimes hostile throughout.
        const hostility = random.chance(0.25) ? 0.8 : 0.2;
        const frame = values.envelope(body, hostility, random.chance(0.7) ? 'request' : random.pick(['oneway', 'hostile'] as const));
        if (frame !== undefined) yield frame;
      }
    }
    // Lists at and beyond the limit, in the bodies this role handles when they have a list.
    const withLists = [...handled, ...Object.keys(BODY_TYPES)].filter((body) => listPaths(BODY_TYPES[body]!).length > 0);
    for (let i = 0; i < this.scale.hugeListFrames && withLists.length > 0; i++) {
      const body = i < handled.size ? (withLists[i % withLists.length] ?? withLists[0]!) : random.pick(withLists);
      const frame = values.hugeListEnvelope(body, i % 2 === 0 ? DEFAULT_MAX_LIST_LENGTH : DEFAULT_MAX_LIST_LENGTH + 1);
      if (frame !== undefined) yield frame;
    }
  }

  // ---- phase (d) ------------------------------------------------------------------------------

  private *hostileAddresses(random: Random, values: ValueMaker, target: FuzzTarget): Generator<FuzzSend> {
    const handled = HANDLED[target.role];
    for (const address of HOSTILE_ADDRESSES) {
      // An echo answers at once; a handled request may answer later (after a task, a disk commit).
      yield values.encode({ requestId: values.requestId(), replyTo: address, echo: { payload: values.bytes(false, 'payload') } });
      const body = random.pick(handled);
      const frame = values.envelope(body, 0.1, 'request', address);
      if (frame !== undefined) yield frame;
      yield values.encode({ responseTo: values.requestId(), sender: address, echo: {} });
    }
    // Every address-typed field of every body type, hostile.
    for (const body of Object.keys(BODY_TYPES)) {
      if (!hasAddressField(BODY_TYPES[body]!)) continue;
      for (let i = 0; i < 3; i++) {
        const frame = values.envelope(body, 0.1, random.chance(0.5) ? 'request' : 'oneway', undefined, random.pick(HOSTILE_ADDRESSES));
        if (frame !== undefined) yield frame;
      }
    }
    // Distinct unreachable reply addresses: more than a socket cache (or ZeroMQ's context) holds.
    for (let i = 0; i < this.scale.distinctReplyAddresses; i++) {
      const address = `tcp://127.0.0.1:${UNREACHABLE_PORT_BASE + i}${FUZZ_KEY}`;
      if (i % 10 === 9) {
        const frame = values.envelope(random.pick(handled), 0, 'request', address, address);
        if (frame !== undefined) {
          yield frame;
          continue;
        }
      }
      yield values.encode({ requestId: values.requestId(), replyTo: address, echo: {} });
    }
  }

  // ---- phase (d'): DNS names -------------------------------------------------------------------

  private *dnsReplyAddresses(values: ValueMaker): Generator<FuzzSend> {
    for (let i = 0; i < this.scale.dnsReplyAddresses; i++) {
      yield values.encode({ requestId: values.requestId(), replyTo: `tcp://fuzz-${i}.invalid:${1 + (i % 65_535)}${FUZZ_KEY}`, echo: {} });
    }
  }

  // ---- phase (e) ------------------------------------------------------------------------------

  private *floods(random: Random, values: ValueMaker, target: FuzzTarget): Generator<FuzzSend> {
    // A pool of cheap frames, reused: the point is the rate, not the variety (phases a-d).
    const bodies = Object.keys(BODY_TYPES);
    const pool: Uint8Array[] = [];
    for (let i = 0; i < 96; i++) {
      const choice = i % 6;
      let frame: Uint8Array | undefined;
      if (choice === 0) frame = values.garbage(random.int(48));
      else if (choice === 1) frame = values.encode({ echo: { payload: values.bytes(false, 'payload') } });
      else if (choice === 2) frame = values.envelope(random.pick(HANDLED[target.role]), 0.2, 'oneway');
      else if (choice === 3) frame = values.envelope(random.pick(bodies), 0.5, 'oneway');
      else if (choice === 4) frame = mangle(random, values.envelope(random.pick(bodies), 0, 'oneway') ?? new Uint8Array(0), undefined);
      // A few requests answered to the listener: the reply path is part of the rate.
      else frame = values.encode({ requestId: values.requestId(), replyTo: this.env.listener, echo: {} });
      // Keep flood frames small: a 100 KiB string in a pool frame would make the flood a byte flood.
      if (frame !== undefined && frame.byteLength <= 4096) pool.push(frame);
    }
    if (pool.length === 0) pool.push(new Uint8Array(0));
    for (let m = 0; m < this.scale.multipartMessages; m++) {
      yield Array.from({ length: this.scale.multipartParts }, () => random.pick(pool));
    }
    for (let i = 0; i < this.scale.burstFrames; i++) yield random.pick(pool);
  }
}

// ---------------------------------------------------------------------------------------------
// Mangling.

/** A valid frame damaged: truncated, bit-flipped, spliced with another, or with a varint bomb. */
export function mangle(random: Random, frame: Uint8Array, other: Uint8Array | undefined): Uint8Array {
  const copy = Uint8Array.from(frame);
  const flip = (bytes: Uint8Array): Uint8Array => {
    const flips = 1 + random.int(8);
    for (let i = 0; i < flips && bytes.length > 0; i++) {
      const at = random.int(bytes.length);
      bytes[at] = bytes[at]! ^ (1 << random.int(8));
    }
    return bytes;
  };
  switch (random.int(6)) {
    case 0:
      return copy.subarray(0, random.int(copy.length + 1));
    case 1:
      return flip(copy);
    case 2:
      return flip(copy.subarray(0, random.int(copy.length + 1)));
    case 3: {
      if (other === undefined) return flip(copy);
      const head = copy.subarray(0, random.int(copy.length + 1));
      const tail = other.subarray(random.int(other.length + 1));
      const spliced = new Uint8Array(head.length + tail.length);
      spliced.set(head, 0);
      spliced.set(tail, head.length);
      return spliced;
    }
    case 4: {
      // Continuation bytes where a length or tag was: a varint that never ends, or claims 2^64.
      const at = random.int(Math.max(1, copy.length));
      const bomb = new Uint8Array(copy.length + 10);
      bomb.set(copy.subarray(0, at), 0);
      bomb.fill(0xff, at, at + 10);
      bomb.set(copy.subarray(at), at + 10);
      return random.chance(0.5) ? bomb : bomb.subarray(0, at + 10);
    }
    default: {
      // A length prefix made larger than what follows (the reader must not run past the end).
      const at = random.int(Math.max(1, copy.length));
      if (copy.length > 0) copy[at] = 0x7f;
      return copy;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Values.

/** A field of the schema with what the table says of it. */
interface FieldSpec extends FieldDescription {
  readonly owner: MessageTypeName;
  /** A singular field: present and non-default; a list: every element. */
  readonly required: boolean;
  /** A list or map that needs an entry. */
  readonly nonEmpty: boolean;
}

const SPEC_PATTERN = /^(?:map<(?<mapValue>\w+)(?<mapValueRequired>!?)>|(?<base>\w+)(?<required>!?)(?<list>\[\])?)(?<nonEmpty>\+?)$/;

const specCache = new Map<MessageTypeName, readonly FieldSpec[]>();

/** The fields of a message type, with required / non-empty read from MESSAGE_SCHEMA. */
function fieldSpecs(type: MessageTypeName): readonly FieldSpec[] {
  const cached = specCache.get(type);
  if (cached !== undefined) return cached;
  const table = MESSAGE_SCHEMA[type] as Readonly<Record<string, string | Readonly<Record<string, string>>>>;
  const specs = describeFields(type).map((description): FieldSpec => {
    let text: string | undefined;
    if (description.oneof === undefined) text = table[description.field] as string | undefined;
    else text = ((table[description.oneof] ?? table[`${description.oneof}!`]) as Readonly<Record<string, string>> | undefined)?.[description.field];
    const groups = SPEC_PATTERN.exec(text ?? '')?.groups ?? {};
    return {
      ...description,
      owner: type,
      required: groups['required'] === '!' || groups['mapValueRequired'] === '!',
      nonEmpty: groups['nonEmpty'] === '+',
    };
  });
  specCache.set(type, specs);
  return specs;
}

/** Whether a oneof group of a message must have a member set. */
function oneofRequired(type: MessageTypeName, group: string): boolean {
  return `${group}!` in (MESSAGE_SCHEMA[type] as object);
}

function isMessageType(type: string): type is MessageTypeName {
  return type in MESSAGE_SCHEMA;
}

/** Paths (field chains) to the repeated fields reachable from a message type. */
function listPaths(type: MessageTypeName, depth = 0): string[][] {
  if (depth > 6) return [];
  const paths: string[][] = [];
  for (const spec of fieldSpecs(type)) {
    if (spec.shape === 'list' || spec.shape === 'map') paths.push([spec.field]);
    else if (spec.kind === 'message' && isMessageType(spec.type)) for (const path of listPaths(spec.type, depth + 1)) paths.push([spec.field, ...path]);
  }
  return paths;
}

/** Whether a message type holds an address-typed field anywhere. */
function hasAddressField(type: MessageTypeName, depth = 0): boolean {
  if (depth > 6) return false;
  return fieldSpecs(type).some((spec) => isAddressField(spec) || (spec.kind === 'message' && isMessageType(spec.type) && hasAddressField(spec.type, depth + 1)));
}

/** Address-typed fields: the schema's `address` type, or (before it existed) an address by its name. */
const ADDRESS_FIELD_NAMES = new Set(['replyTo', 'sender', 'address', 'shardAddresses', 'replicas', 'subscriber', 'scheduler', 'executor', 'holder', 'fromNode']);
function isAddressField(spec: FieldSpec): boolean {
  return spec.kind === 'scalar' && (spec.type === 'address' || spec.type === 'endpoint' || (spec.type === 'string' && ADDRESS_FIELD_NAMES.has(spec.field)));
}

/**
 * Addresses that name a member (where the receiver will send work or membership traffic as if to
 * a member, not a reply): never a real member's address (a forged member; see the file comment).
 */
const IDENTITY_ADDRESS_FIELDS = new Set(['NodeInfo.address', 'NodeInfo.shardAddresses', 'ExecutorStatus.address', 'KeyAddress.replicas', 'Lease.executor']);

/** Names of real functions go only where they are read or run, never registered again or deleted. */
const REAL_FUNCTION_FIELDS = new Set(['CallRequest.function', 'ScheduledFunction.name', 'FunctionRef.name', 'ListFunctions.name', 'Trigger.targetFunction', 'InvocationMessage.targetFunction']);

/** Field names whose strings are KVS keys. */
const KEY_FIELDS = new Set(['key', 'keys', 'cachedKeys', 'reference', 'resultKey']);
/** Field names whose strings are function or DAG names. */
const NAME_FIELDS = new Set(['name', 'function', 'functions', 'dag', 'successors', 'parentNames', 'sourceFunction', 'targetFunction', 'fromFunction', 'toFunction', 'warmFunctions']);

const UINT32_EDGES = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
const UINT64_EDGES = [0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 63, 2 ** 64 - 1];
const DOUBLE_EDGES = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, -1, Number.MAX_VALUE, Number.MIN_VALUE, 1e308, -1e308];

/** Makes values, envelopes and garbage for one (phase, target). */
class ValueMaker {
  private readonly clock = new HybridClock('wire-fuzzer', () => 1_700_000_000_000);
  private nextId = 0;
  /** A huge value (string, bytes, list) per envelope at most, so frames stay mostly small. */
  private hugeLeft = 0;

  constructor(
    private readonly random: Random,
    private readonly env: FuzzEnvironment,
    private readonly target: FuzzTarget,
  ) {}

  requestId(): number {
    return FUZZ_REQUEST_ID_BASE + (this.nextId++ % 2 ** 20) * 2 ** 10 + this.random.int(2 ** 10);
  }

  /** Encodes an envelope object as protobufjs would, with no validation; undefined if it cannot. */
  encode(envelope: PbTypes.IEnvelope): Uint8Array {
    return pb.Envelope.encode(envelope).finish();
  }

  /**
   * An envelope with body `body`: valid values, except that each field is hostile with probability
   * `hostility`; `header`: a request answered to the listener, one-way, or hostile header fields.
   * `replyTo` and `address` replace the reply address and every address-typed field.
   */
  envelope(body: string, hostility: number, header: 'request' | 'oneway' | 'hostile', replyTo?: string, address?: string): Uint8Array | undefined {
    const type = BODY_TYPES[body];
    if (type === undefined) return undefined;
    this.hugeLeft = hostility > 0 && this.random.chance(0.1) ? 1 : 0;
    const envelope: Record<string, unknown> = { [body]: this.message(type, hostility, address, 0) };
    Object.assign(envelope, this.header(header, replyTo));
    if (address !== undefined && this.random.chance(0.5)) envelope['sender'] = address;
    try {
      return this.encode(envelope as PbTypes.IEnvelope);
    } catch {
      // protobufjs refused to encode a value (a type it cannot coerce): that frame cannot exist.
      return undefined;
    }
  }

  /** An envelope of `body` with one of its (nested) lists holding `count` entries. */
  hugeListEnvelope(body: string, count: number): Uint8Array | undefined {
    const type = BODY_TYPES[body];
    if (type === undefined) return undefined;
    const paths = listPaths(type);
    if (paths.length === 0) return undefined;
    const path = this.random.pick(paths);
    this.hugeLeft = 0;
    const message = this.message(type, 0, undefined, 0);
    // Walk to the list's owner, creating valid intermediate messages.
    let owner: Record<string, unknown> = message;
    let ownerType: MessageTypeName = type;
    for (const step of path.slice(0, -1)) {
      const spec = fieldSpecs(ownerType).find((candidate) => candidate.field === step)!;
      const child = (owner[step] as Record<string, unknown> | undefined) ?? this.message(spec.type as MessageTypeName, 0, undefined, 1);
      owner[step] = child;
      owner = child;
      ownerType = spec.type as MessageTypeName;
    }
    const last = fieldSpecs(ownerType).find((candidate) => candidate.field === path.at(-1))!;
    owner[last.field] = this.bigCollection(last, count);
    try {
      return this.encode({ requestId: this.requestId(), replyTo: this.env.listener, [body]: message } as PbTypes.IEnvelope);
    } catch {
      return undefined;
    }
  }

  private header(kind: 'request' | 'oneway' | 'hostile', replyTo: string | undefined): Record<string, unknown> {
    const header: Record<string, unknown> = {};
    if (this.random.chance(0.5)) header['sender'] = this.address(false, 'sender', 'Envelope');
    if (this.random.chance(0.3)) header['traceId'] = this.string(this.random.chance(0.3), 'traceId', 'Envelope');
    if (this.env.token !== undefined) {
      const token = this.env.token;
      if (this.random.chance(0.85)) header['token'] = token;
      else header['token'] = this.random.pick([token.slice(0, this.random.int(token.length)), `${token}x`, token.replace('lfaas1.', 'lfaas2.'), this.string(true, 'token', 'Envelope')]);
    }
    if (kind === 'request' || replyTo !== undefined) {
      header['requestId'] = this.requestId();
      header['replyTo'] = replyTo ?? this.env.listener;
      return header;
    }
    if (kind === 'oneway') return header;
    switch (this.random.int(6)) {
      case 0:
        header['requestId'] = this.random.pick(UINT64_EDGES);
        header['replyTo'] = this.env.listener;
        break;
      case 1:
        header['requestId'] = this.requestId();
        break;
      case 2:
        header['replyTo'] = this.env.listener;
        break;
      case 3:
        header['requestId'] = this.requestId();
        header['replyTo'] = this.env.listener;
        header['responseTo'] = this.requestId();
        break;
      case 4:
        header['responseTo'] = this.random.pick(UINT64_EDGES);
        break;
      default:
        header['requestId'] = this.requestId();
        header['replyTo'] = this.random.pick([this.target.address, ...this.env.cluster]);
        break;
    }
    return header;
  }

  /** A message of `type`: required fields set, optional ones often, each hostile with probability `hostility`. */
  private message(type: MessageTypeName, hostility: number, address: string | undefined, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const groups = new Map<string, FieldSpec[]>();
    for (const spec of fieldSpecs(type)) {
      if (spec.oneof !== undefined) {
        groups.set(spec.oneof, [...(groups.get(spec.oneof) ?? []), spec]);
        continue;
      }
      const hostile = this.random.chance(hostility);
      const present = spec.required || spec.nonEmpty || hostile || this.random.chance(0.6);
      // A hostile required field is sometimes absent altogether.
      if (!present || (hostile && spec.required && this.random.chance(0.15))) continue;
      out[spec.field] = this.field(spec, hostile, address, depth);
    }
    for (const [group, members] of groups) {
      const hostile = this.random.chance(hostility);
      if (!oneofRequired(type, group) && !this.random.chance(0.7)) continue;
      if (hostile && this.random.chance(0.2)) continue;
      const member = this.random.pick(members);
      out[member.field] = this.field(member, hostile, address, depth);
    }
    this.relate(type, out);
    return out;
  }

  /** Values that only make sense together (a lattice tag with its payload, a schedule placed here). */
  private relate(type: MessageTypeName, message: Record<string, unknown>): void {
    if (type === 'ScheduledFunction' && this.target.role === 'executor' && this.random.chance(0.6) && typeof message['executor'] === 'string') {
      // Placed on the target, so the executor runs it (else it ignores the schedule).
      message['executor'] = this.target.address;
    }
    if (type === 'NodeInfo' && this.target.role !== 'routing' && this.env.forgeMembership !== true) {
      // Shards and storage nodes believe any ring update; a forged alive node would move keys for
      // good (the trust gap, see the file comment). The routing node fails a fake after its timeout.
      message['departed'] = true;
    }
    if (type === 'RingUpdate' && this.target.role !== 'routing' && this.env.forgeMembership !== true) {
      // Likewise the cluster's default replication factors, which a shard adopts from any update.
      delete message['defaultGlobal'];
      delete message['defaultLocal'];
    }
  }

  private field(spec: FieldSpec, hostile: boolean, address: string | undefined, depth: number): unknown {
    if (spec.shape === 'single') return this.value(spec, hostile, address, depth);
    if (spec.shape === 'list') {
      const count = this.collectionSize(spec, hostile);
      return Array.from({ length: count }, () => this.value(spec, hostile && this.random.chance(0.5), address, depth, true));
    }
    const count = this.collectionSize(spec, hostile);
    const map: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) map[this.mapKey(hostile)] = this.value(spec, hostile && this.random.chance(0.5), address, depth, true);
    return map;
  }

  private collectionSize(spec: FieldSpec, hostile: boolean): number {
    if (!hostile) return (spec.nonEmpty ? 1 : 0) + this.random.int(3);
    if (this.hugeLeft > 0 && this.random.chance(0.3)) {
      this.hugeLeft--;
      return this.random.pick([1000, 10_000]);
    }
    return this.random.pick([0, 0, 1, 2, 5]);
  }

  private bigCollection(spec: FieldSpec, count: number): unknown {
    if (spec.kind === 'message' && isMessageType(spec.type)) {
      // One minimal valid element, repeated: the list's length is the point.
      const element = this.message(spec.type, 0, undefined, 1);
      if (spec.shape === 'map') return Object.fromEntries(Array.from({ length: count }, (_, i) => [`m${i}`, element]));
      return Array.from({ length: count }, () => element);
    }
    const element = (i: number): unknown => {
      if (spec.kind === 'enum') return 1;
      switch (spec.type) {
        case 'bytes':
          return Uint8Array.of(i & 0xff);
        case 'bool':
          return true;
        case 'double':
          return i;
        case 'uint32':
        case 'uint64':
          return i + 1;
        default:
          return isAddressField(spec) ? `tcp://127.0.0.1:${UNREACHABLE_PORT_BASE + (i % 1000)}${FUZZ_KEY}` : `k${i}`;
      }
    };
    if (spec.shape === 'map') return Object.fromEntries(Array.from({ length: count }, (_, i) => [`m${i}`, element(i)]));
    return Array.from({ length: count }, (_, i) => element(i));
  }

  private mapKey(hostile: boolean): string {
    if (!hostile) return `m${this.random.int(1000)}`;
    return this.random.pick(['__proto__', 'constructor', 'toString', '', 'x'.repeat(4096), '\u{1F600}', 'a\u0000b', `m${this.random.int(1000)}`]);
  }

  private value(spec: FieldSpec, hostile: boolean, address: string | undefined, depth: number, element = false): unknown {
    if (spec.kind === 'message') {
      if (!isMessageType(spec.type)) return {};
      return this.message(spec.type, hostile ? 0.5 : 0, address, depth + 1);
    }
    if (spec.kind === 'enum') return this.enumValue(spec, hostile);
    if (isAddressField(spec)) {
      if (address !== undefined) return address;
      return this.address(hostile, spec.field, spec.owner);
    }
    switch (spec.type) {
      case 'bool':
        return this.random.chance(0.5);
      case 'uint32':
        return hostile ? this.random.pick(UINT32_EDGES) : this.smallNumber(spec.field);
      case 'uint64':
        return hostile ? this.random.pick(UINT64_EDGES) : this.random.int(2 ** 31);
      case 'double':
        return hostile ? this.random.pick(DOUBLE_EDGES) : this.random.next();
      case 'bytes':
        return this.bytes(hostile, spec.field);
      default:
        return this.string(hostile, spec.field, spec.owner, spec.required || element);
    }
  }

  private smallNumber(field: string): number {
    // Timeouts and leases stay short, so runs the fuzzer starts end soon.
    if (/timeout|lease|keepAlive/i.test(field)) return 1 + this.random.int(1000);
    if (field === 'version') return 1 + this.random.int(3);
    return this.random.int(100);
  }

  private enumValue(spec: FieldSpec, hostile: boolean): number {
    const known = Object.values((pb as unknown as Record<string, Record<string, number>>)[spec.type] ?? {}).filter((value) => typeof value === 'number');
    if (!hostile || known.length === 0) {
      const nonZero = known.filter((value) => value !== 0);
      return nonZero.length > 0 && (spec.required || this.random.chance(0.8)) ? this.random.pick(nonZero) : 0;
    }
    return this.random.pick([0, -1, Math.max(...known) + 1, 1000, 2 ** 31 - 1]);
  }

  /** An address: valid (the listener, an unreachable port, the cluster) or hostile. */
  address(hostile: boolean, field: string, owner: string): string {
    if (hostile) return this.random.pick(HOSTILE_ADDRESSES);
    const unreachable = `tcp://127.0.0.1:${UNREACHABLE_PORT_BASE + this.random.int(8)}${FUZZ_KEY}`;
    if (IDENTITY_ADDRESS_FIELDS.has(`${owner}.${field}`)) return this.random.chance(0.5) ? this.env.listener : unreachable;
    switch (this.random.int(4)) {
      case 0:
        return this.target.address;
      case 1:
        return this.random.pick(this.env.cluster.length > 0 ? this.env.cluster : [this.env.listener]);
      case 2:
        return unreachable;
      default:
        return this.env.listener;
    }
  }

  string(hostile: boolean, field: string, owner: string, required = false): string {
    if (hostile) {
      const options: (() => string)[] = [
        () => '',
        () => '\uD800',
        () => `a\uDFFFb${'\uD83D'}`,
        () => '\u0000',
        () => '__proto__',
        () => 'constructor',
        () => 'lfaas/',
        () => `lfaas/fuzz/${this.random.int(1e6)}`,
        () => 'lfaas/functions',
        () => 'k'.repeat(1025),
        () => 'é'.repeat(513),
        () => '../../../../etc/passwd',
        () => '%s%n%x',
        () => '\u202Eevil',
        () => '\u{1F600}'.repeat(100),
      ];
      if (this.hugeLeft > 0 && this.random.chance(0.3)) {
        this.hugeLeft--;
        options.push(() => 'x'.repeat(this.random.pick([65_536, MiB])));
      }
      return this.random.pick(options)();
    }
    if (KEY_FIELDS.has(field)) return this.random.pick([`fuzz/${this.random.int(1e6)}`, `lfaas/fuzz/${this.random.int(1e6)}`, `clé-${this.random.int(1000)}`]);
    if (NAME_FIELDS.has(field)) {
      if (REAL_FUNCTION_FIELDS.has(`${owner}.${field}`) && this.env.functions.length > 0 && this.random.chance(0.5)) return this.random.pick(this.env.functions);
      return `fuzz_${this.random.int(1e6)}`;
    }
    if (!required && this.random.chance(0.2)) return '';
    return `v${this.random.int(1e6)}`;
  }

  /** Bytes for a field: valid (a lattice encoding, a msgpack value, code) or hostile. */
  bytes(hostile: boolean, field: string): Uint8Array {
    if (!hostile) {
      switch (field) {
        case 'payload':
          return this.random.pick([
            () => Lww.write(this.clock, { fuzz: this.random.int(1000) }).encode(),
            () => Counter.ZERO.increment('fuzz', 1 + this.random.int(5)).encode(),
            () => GSet.of(`e${this.random.int(100)}`).encode(),
            () => new Max(this.random.int(1000)).encode(),
            () => encodeValue({ message: this.random.int(1000) }),
          ])();
        case 'value':
        case 'result':
          return encodeValue(this.random.pick<unknown>([1, 'x', [1, 2], { a: 1 }, null, true]));
        case 'code':
          return Buffer.from('module.exports = (x) => x;');
        case 'digest':
          return this.randomBytes(4);
        default:
          return this.randomBytes(this.random.int(16));
      }
    }
    const options: (() => Uint8Array)[] = [
      () => new Uint8Array(0),
      () => this.randomBytes(1 + this.random.int(64)),
      () => this.randomBytes(1024 + this.random.int(4096)),
      // msgpack: an array32 and a map32 header claiming 2^32-1 entries, a bin32 claiming 4 GiB.
      () => Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff),
      () => Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61),
      () => Uint8Array.of(0xc6, 0xff, 0xff, 0xff, 0xff, 0x00),
      // Nesting bombs: 100 000 one-element arrays or maps.
      () => nested(0x91, 100_000, 0xc0),
      () => nested(0x81, 50_000, 0xc0, 0xa1, 0x6b),
      // Extension types (msgpackr's records, typed arrays, timestamps) with random bodies.
      () => Uint8Array.of(0xd4, this.random.int(256) - 128, this.random.int(256)),
      () => Uint8Array.of(0xc7, 0x08, 0xff, ...this.randomBytes(8)),
      () => Uint8Array.of(0xd6, 0x72, 0x01, 0x02, 0x03, 0x04),
      // A valid lattice encoding cut short, and one with a flipped tag.
      () => Lww.write(this.clock, 'truncated').encode().subarray(0, 3),
      () => {
        const encoded = Uint8Array.from(Counter.ZERO.increment('w', 3).encode());
        encoded[1] = encoded[1]! ^ 0x0f;
        return encoded;
      },
      // Code that is not code, code that throws or spins at load, code that reaches for the host.
      () => Buffer.from('\u0000\uFFFF'),
      () => Buffer.from('module.exports = (() => { throw new Error("at load"); })();'),
      () => Buffer.from('module.exports = (() => { const t = Date.now(); while (Date.now() - t < 200) {} return (x) => x; })();'),
      () => Buffer.from('module.exports = () => process.exit(1);'),
      () => Buffer.from('module.exports = () => require("child_process").execSync("true");'),
    ];
    if (this.hugeLeft > 0 && this.random.chance(0.3)) {
      this.hugeLeft--;
      options.push(() => this.randomBytes(this.random.pick([MiB, 8 * MiB])));
    }
    return this.random.pick(options)();
  }

  private randomBytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const word = (this.random.next() * 4294967296) >>> 0;
      out[i] = word & 0xff;
      if (i + 1 < length) out[i + 1] = (word >>> 8) & 0xff;
      if (i + 2 < length) out[i + 2] = (word >>> 16) & 0xff;
      if (i + 3 < length) out[i + 3] = word >>> 24;
    }
    return out;
  }

  /**
   * `length` bytes of garbage: noise, a constant, plausible protobuf tags, or noise behind a valid
   * header naming the listener (so a node that refuses it answers with a typed error). Long frames
   * tile a 64 KiB block rather than draw every byte.
   */
  garbage(length: number, withHeader = this.random.chance(0.3)): Uint8Array {
    const header = withHeader ? this.encode({ requestId: this.requestId(), replyTo: this.env.listener }) : new Uint8Array(0);
    const out = new Uint8Array(Math.max(length, 0));
    const kind = this.random.int(4);
    const block = (size: number): Uint8Array => {
      if (kind === 1) return new Uint8Array(size).fill(this.random.pick([0x00, 0xff, 0x80, 0x0a]));
      if (kind === 2) {
        // Tags of real envelope fields (1-5, 10-60) with random wire types, and random values.
        const bytes = this.randomBytes(size);
        for (let i = 0; i < size; i += 1 + this.random.int(6)) bytes[i] = ((1 + this.random.int(60)) << 3) | this.random.int(6);
        return bytes;
      }
      return this.randomBytes(size);
    };
    if (length <= 65_536) out.set(block(length));
    else Buffer.from(out.buffer, out.byteOffset, out.byteLength).fill(block(65_536));
    out.set(header.subarray(0, Math.min(header.length, out.length)), 0);
    return out;
  }
}

/** `count` copies of a container header with one element, then the innermost value. */
function nested(header: number, count: number, ...innermost: number[]): Uint8Array {
  const out = new Uint8Array(count + innermost.length).fill(header);
  out.set(innermost, count);
  return out;
}

/** A 32-bit mix of numbers (the (phase, target) seeds). */
function mix(...values: number[]): number {
  let hash = 0x811c9dc5;
  for (const value of values) {
    hash = Math.imul(hash ^ (value >>> 0), 0x01000193);
    hash ^= hash >>> 15;
  }
  return hash >>> 0;
}

function hashText(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
