/**
 * A real storage node (one process, two shards, over ZeroMQ and lmdb) fed bad input: lattice type
 * mismatches, undecodable payloads, payloads contradicting their declared type, empty and oversized
 * keys, garbage, truncated and oversized frames, a message type a shard does not handle, and misses.
 *
 * Every case asserts the exact typed error, that the process is still up and serving (a fresh
 * PUT/GET round trip), and that what was stored before the bad request is byte for byte unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { Counter, ErrorCode, GSet, HybridClock, LatticeType, LfaasError, Lww, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { Rpc, bindTransport, encodeEnvelope, errorFromWireMessage, pb, systemClock } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';
import { TestCluster, adminToken, eventually, isAlive } from './cluster.js';
import { ManglingTransport, rejection } from './wire-faults.js';

const MiB = 1024 * 1024;
/** The longest key a shard accepts, in UTF-8 bytes (kvs/shard.ts `keyBytesMax`; lmdb allows 1978). */
const KEY_BYTES_MAX = 1024;

/** What a GET answered for one key: the stored bytes, or the typed error. */
type Stored = { readonly latticeType: number; readonly payload: string } | { readonly error: ErrorCode };

/** Bytes as hex: compared exactly, and immune to properties decoders attach to buffers. */
function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** The catalogue code of a result tuple's error, or undefined when it succeeded. */
function codeOf(tuple: PbTypes.IKeyTuple | undefined): ErrorCode | undefined {
  expect(tuple).toBeDefined();
  const code = tuple!.error?.code ?? 0;
  return code === 0 ? undefined : errorFromWireMessage(tuple!.error!).code;
}

describe('a storage node fed bad input', () => {
  const cluster = new TestCluster();
  let client: KvsClient;
  let raw: ManglingTransport;
  let rpc: Rpc;
  let shard: string;
  let pid: number;
  const writer = new HybridClock('bad-input-test', () => Date.now());
  /** Keys written by the tests, with the bytes each must still hold. */
  const expected = new Map<string, { latticeType: number; payload: string }>();
  let probeCount = 0;
  let keyCount = 0;

  /** A fresh key (with `prefix`) that shard 0 of node-a replicates. */
  async function ownedKey(prefix: string, pad = 0): Promise<string> {
    for (let attempt = 0; attempt < 500; attempt++) {
      const base = `${prefix}-${keyCount++}-`;
      const key = pad > 0 ? base.padEnd(pad, 'x') : base.slice(0, -1);
      const replicas = await client.replicasOf(key);
      if (replicas.includes(shard)) return key;
    }
    throw new Error(`no key with prefix ${prefix} lands on ${shard}`);
  }

  async function send(kind: number, tuples: PbTypes.IKeyTuple[], timeoutMs = 3000): Promise<PbTypes.IKeyTuple[]> {
    const response = await rpc.request(shard, { kvsRequest: { kind, tuples, ack: kind === pb.RequestKind.GET ? pb.AckMode.ACK_MODE_UNSPECIFIED : pb.AckMode.ACK_DURABLE } }, { timeoutMs });
    expect(response.body).toBe('kvsResponse');
    const answered = response.kvsResponse?.tuples ?? [];
    expect(answered.map((tuple) => tuple.key)).toEqual(tuples.map((tuple) => tuple.key));
    return answered;
  }

  function tupleOf(key: string, value: AnyLattice): PbTypes.IKeyTuple {
    return { key, latticeType: value.type, payload: value.encode() };
  }

  async function getRaw(key: string): Promise<Stored> {
    const [tuple] = await send(pb.RequestKind.GET, [{ key }]);
    const code = codeOf(tuple);
    if (code !== undefined) return { error: code };
    return { latticeType: tuple!.latticeType ?? 0, payload: hex(tuple!.payload ?? new Uint8Array()) };
  }

  /** PUTs `value` under a fresh key of shard 0 and remembers it as a value that must survive. */
  async function seed(prefix: string, value: AnyLattice): Promise<string> {
    const key = await ownedKey(prefix);
    const [tuple] = await send(pb.RequestKind.PUT, [tupleOf(key, value)]);
    expect(codeOf(tuple)).toBeUndefined();
    expected.set(key, { latticeType: value.type, payload: hex(value.encode()) });
    expect(await getRaw(key)).toEqual(expected.get(key));
    return key;
  }

  /** The node is up, serves a fresh PUT/GET round trip, and every value written so far is unchanged. */
  async function expectHealthyAndUnchanged(): Promise<void> {
    expect(isAlive(pid)).toBe(true);
    const probe = await ownedKey(`probe${probeCount++}`);
    const value = Lww.write(writer, { probe: probeCount });
    const [put] = await send(pb.RequestKind.PUT, [tupleOf(probe, value)]);
    expect(codeOf(put)).toBeUndefined();
    expect(await getRaw(probe)).toEqual({ latticeType: LatticeType.Lww, payload: hex(value.encode()) });
    for (const [key, stored] of expected) expect(await getRaw(key), key.slice(0, 40)).toEqual(stored);
    expect(isAlive(pid)).toBe(true);
  }

  beforeAll(async () => {
    await cluster.startRouting();
    const node = await cluster.startNode('node-a', 2);
    pid = node.pid;
    shard = cluster.shardsOf('node-a')[0]!;
    expect(cluster.shardsOf('node-a')).toHaveLength(2);
    client = await KvsClient.connect({ routing: [cluster.routingAddress], requestTimeoutMs: 1000, retriesMax: 4 });
    raw = new ManglingTransport(await bindTransport());
    rpc = new Rpc(raw, systemClock, { token: adminToken() });
    // The routing node knows the node, and shard 0 knows the ring (it owns its keys).
    expect(
      await eventually(async () => {
        try {
          return (await client.replicasOf('warm-up')).length > 0;
        } catch {
          return false;
        }
      }, 10_000),
    ).toBe(true);
    const warm = await ownedKey('warm');
    expect(
      await eventually(async () => {
        try {
          const [tuple] = await send(pb.RequestKind.PUT, [tupleOf(warm, Lww.write(writer, 'warm'))], 1000);
          return codeOf(tuple) === undefined;
        } catch {
          return false;
        }
      }, 10_000),
    ).toBe(true);
    await seed('canary', Lww.write(writer, { canary: true, text: 'must survive every bad request' }));
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await rpc?.close();
    await raw?.close();
    await cluster.stop();
  }, 60_000);

  it('a PUT of another lattice type on an existing key: per-tuple KVS_LATTICE_MISMATCH, value unchanged', async () => {
    const key = await seed('mismatch', Lww.write(writer, 'a register'));
    const [tuple] = await send(pb.RequestKind.PUT, [tupleOf(key, Counter.ZERO.increment('w', 5))]);
    expect(codeOf(tuple)).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
    // Also with the type left unspecified (0): the payload's own type still decides.
    const [untyped] = await send(pb.RequestKind.PUT, [{ key, payload: GSet.of('x').encode() }]);
    expect(codeOf(untyped)).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
    await expectHealthyAndUnchanged();
  });

  it('a batch of 3 with one garbage payload: that tuple gets LATTICE_*, the other two are stored', async () => {
    const victim = await seed('garbage', GSet.of('kept'));
    const first = await ownedKey('batch-first');
    const third = await ownedKey('batch-third');
    const one = Lww.write(writer, 1);
    const three = Lww.write(writer, 3);
    const garbage = Uint8Array.from([0xc1, 0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef]);
    const results = await send(pb.RequestKind.PUT, [tupleOf(first, one), { key: victim, latticeType: LatticeType.GSet, payload: garbage }, tupleOf(third, three)]);
    expect(codeOf(results[0])).toBeUndefined();
    expect(codeOf(results[1])).toBe(ErrorCode.LATTICE_DECODE);
    expect(codeOf(results[2])).toBeUndefined();
    expected.set(first, { latticeType: LatticeType.Lww, payload: hex(one.encode()) });
    expected.set(third, { latticeType: LatticeType.Lww, payload: hex(three.encode()) });
    // An unknown type tag and an empty payload on a fresh key: typed, and the key is not created.
    const fresh = await ownedKey('garbage-fresh');
    const [unknown, empty] = await send(pb.RequestKind.PUT, [
      { key: fresh, payload: Uint8Array.from([0x92, 0x63, 0x01]) /* msgpack [99, 1] */ },
      { key: fresh, payload: new Uint8Array() },
    ]);
    expect(codeOf(unknown)).toBe(ErrorCode.LATTICE_UNKNOWN_TYPE);
    expect(codeOf(empty)).toMatch(/^LATTICE_/);
    expect(await getRaw(fresh)).toEqual({ error: ErrorCode.KVS_KEY_NOT_FOUND });
    await expectHealthyAndUnchanged();
  });

  it('a tuple whose latticeType contradicts its payload: LATTICE_DECODE, value unchanged', async () => {
    const key = await seed('contradiction', Counter.ZERO.increment('w', 2));
    // Declared Counter (the key's type), but the payload is an Lww: refused before any merge.
    const [tuple] = await send(pb.RequestKind.PUT, [{ key, latticeType: LatticeType.Counter, payload: Lww.write(writer, 'sneaky').encode() }]);
    expect(codeOf(tuple)).toBe(ErrorCode.LATTICE_DECODE);
    // Declared Lww, payload a larger Counter of the same type as the key: refused as well.
    const [other] = await send(pb.RequestKind.PUT, [{ key, latticeType: LatticeType.Lww, payload: Counter.ZERO.increment('w', 99).encode() }]);
    expect(codeOf(other)).toBe(ErrorCode.LATTICE_DECODE);
    await expectHealthyAndUnchanged();
  });

  it('an empty key is refused by validation: an errorReply with PROTO_MISSING_FIELD', async () => {
    const error = await rejection(rpc.request(shard, { kvsRequest: { kind: pb.RequestKind.PUT, tuples: [tupleOf('', Lww.write(writer, 'x'))], ack: pb.AckMode.ACK_DURABLE } }, { timeoutMs: 3000 }));
    expect(error.code).toBe(ErrorCode.PROTO_MISSING_FIELD);
    expect(error.message).toContain('key');
    const get = await rejection(rpc.request(shard, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: '' }] } }, { timeoutMs: 3000 }));
    expect(get.code).toBe(ErrorCode.PROTO_MISSING_FIELD);
    // No tuples at all is the same kind of error.
    const none = await rejection(rpc.request(shard, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [] } }, { timeoutMs: 3000 }));
    expect(none.code).toBe(ErrorCode.PROTO_MISSING_FIELD);
    // The client refuses it before sending.
    expect((await rejection(client.put('', Lww.write(writer, 'x')))).code).toBe(ErrorCode.KVS_BAD_KEY);
    await expectHealthyAndUnchanged();
  });

  it(`a 5000-byte key is KVS_BAD_KEY (PUT and GET); a ${KEY_BYTES_MAX}-byte ASCII key works, one byte more does not`, async () => {
    const long = 'k'.repeat(5000);
    const [put] = await send(pb.RequestKind.PUT, [tupleOf(long, Lww.write(writer, 'too long'))]);
    expect(codeOf(put)).toBe(ErrorCode.KVS_BAD_KEY);
    const [get] = await send(pb.RequestKind.GET, [{ key: long }]);
    expect(codeOf(get)).toBe(ErrorCode.KVS_BAD_KEY);
    // 4096 bytes was the limit before lmdb's own key limit (1978 bytes) lowered it.
    const [old] = await send(pb.RequestKind.PUT, [tupleOf('k'.repeat(4096), Lww.write(writer, 'old limit'))]);
    expect(codeOf(old)).toBe(ErrorCode.KVS_BAD_KEY);
    // Two-byte characters: short in UTF-16 units, over the limit in bytes.
    const [wide] = await send(pb.RequestKind.PUT, [tupleOf('é'.repeat(KEY_BYTES_MAX / 2 + 1), Lww.write(writer, 'too wide'))]);
    expect(codeOf(wide)).toBe(ErrorCode.KVS_BAD_KEY);

    const limit = await ownedKey('limit', KEY_BYTES_MAX);
    expect(Buffer.byteLength(limit)).toBe(KEY_BYTES_MAX);
    const [over] = await send(pb.RequestKind.PUT, [tupleOf(`${limit}x`, Lww.write(writer, 'one byte over'))]);
    expect(codeOf(over)).toBe(ErrorCode.KVS_BAD_KEY);
    const value = Lww.write(writer, 'at the limit');
    // Durable: the key must also fit the disk tier, not only the memory tier.
    const [ok] = await send(pb.RequestKind.PUT, [tupleOf(limit, value)]);
    expect(codeOf(ok)).toBeUndefined();
    expected.set(limit, { latticeType: LatticeType.Lww, payload: hex(value.encode()) });
    expect((await client.get<Lww<string>>(limit))?.reveal()).toBe('at the limit');
    await expectHealthyAndUnchanged();
  });

  it('a garbage frame without a reply address is dropped; a truncated request is answered with PROTO_MALFORMED', async () => {
    await raw.send(shard, Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0x42]));
    await raw.send(shard, new Uint8Array(0));
    await raw.send(shard, Buffer.from('GET / HTTP/1.1\r\nHost: shard\r\n\r\n'));
    // A well-formed envelope without any body and without a reply address: dropped too.
    await raw.send(shard, encodeEnvelope({ sender: 'tcp://127.0.0.1:1', traceId: 'no-body' }));
    await expectHealthyAndUnchanged();

    const key = await seed('truncated', Lww.write(writer, 'before'));
    raw.mangleOnce((frame) => frame.subarray(0, frame.byteLength - 7));
    const error = await rejection(rpc.request(shard, { kvsRequest: { kind: pb.RequestKind.PUT, tuples: [tupleOf(key, Lww.write(writer, 'after, truncated'))], ack: pb.AckMode.ACK_DURABLE } }, { timeoutMs: 3000 }));
    expect(error.code).toBe(ErrorCode.PROTO_MALFORMED);
    await expectHealthyAndUnchanged();
  });

  it('a 17 MiB frame: PROTO_TOO_LARGE when it names a reply address, dropped otherwise; the node stays up', async () => {
    const key = await seed('huge', Lww.write(writer, 'small'));
    const huge = new Uint8Array(17 * MiB).fill(0x61);
    const error = await rejection(rpc.request(shard, { kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key, latticeType: LatticeType.Lww, payload: huge }], ack: pb.AckMode.ACK_DURABLE } }, { timeoutMs: 10_000 }));
    expect(error.code).toBe(ErrorCode.PROTO_TOO_LARGE);
    // No reply address recoverable: garbage, and an envelope without request id / reply address.
    // (ZeroMQ carries them and the node drops them; the node:net transport refuses them at the
    // sender, typed: a connection carries no frame above NET_FRAME_BYTES_MAX.)
    const oversized = async (frame: Uint8Array): Promise<void> => {
      await raw.send(shard, frame).catch((error: unknown) => expect((error as LfaasError).code).toBe(ErrorCode.PROTO_TOO_LARGE));
    };
    await oversized(new Uint8Array(17 * MiB).fill(0xff));
    await oversized(encodeEnvelope({ kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key, latticeType: LatticeType.Lww, payload: huge }] } }));
    await expectHealthyAndUnchanged();
  });

  it('a message type a shard does not handle (callRequest): PROTO_UNKNOWN_MESSAGE', async () => {
    const error = await rejection(rpc.request(shard, { callRequest: { callId: 'call-1', function: 'increment' } }, { timeoutMs: 3000 }));
    expect(error.code).toBe(ErrorCode.PROTO_UNKNOWN_MESSAGE);
    const dag = await rejection(rpc.request(shard, { registerDag: { spec: { name: 'd', functions: ['f'] } } }, { timeoutMs: 3000 }));
    expect(dag.code).toBe(ErrorCode.PROTO_UNKNOWN_MESSAGE);
    await expectHealthyAndUnchanged();
  });

  it('a GET of a missing key: per-tuple KVS_KEY_NOT_FOUND; the client answers undefined', async () => {
    const missing = await ownedKey('missing');
    const present = [...expected.keys()][0]!;
    const [miss, hit] = await send(pb.RequestKind.GET, [{ key: missing }, { key: present }]);
    expect(codeOf(miss)).toBe(ErrorCode.KVS_KEY_NOT_FOUND);
    expect(codeOf(hit)).toBeUndefined();
    expect(hex(hit!.payload!)).toBe(expected.get(present)!.payload);
    expect(await client.get(missing)).toBeUndefined();
    expect(await client.get(`missing-anywhere-${Date.now()}`)).toBeUndefined();
    expect(await client.getAll(missing)).toBeUndefined();
    await expectHealthyAndUnchanged();
  });

  it('through the KvsClient: a PUT of a mismatched type rejects with KVS_LATTICE_MISMATCH', async () => {
    const key = await seed('client-mismatch', Lww.write(writer, { owner: 'lww' }));
    const error = await rejection(client.put(key, Counter.ZERO.increment('c', 1), { ack: 'durable' }));
    expect(error.code).toBe('KVS_LATTICE_MISMATCH');
    const read = await client.get<Lww<{ owner: string }>>(key);
    expect(read?.type).toBe(LatticeType.Lww);
    expect(hex(read!.encode())).toBe(expected.get(key)!.payload);
    expect(read?.reveal()).toEqual((decodeLattice(Buffer.from(expected.get(key)!.payload, 'hex')) as Lww<{ owner: string }>).reveal());
    await expectHealthyAndUnchanged();
  });

  it('a client PUT of another lattice type cannot bypass KVS_LATTICE_MISMATCH by naming a later generation', async () => {
    // `generation` is for replicas (gossip, hand-off: `fromReplica`); a client never sets it.
    // Today the shard believes it on a client PUT: a later generation replaces the key's value,
    // of any type, so the mismatch rule ("writes nothing") is bypassed (see the report). Last in
    // the file, and its key leaves the shared list, so a failure here does not cascade.
    const key = await seed('forged-generation', Lww.write(writer, 'precious'));
    const before = expected.get(key)!;
    expected.delete(key);
    const [tuple] = await send(pb.RequestKind.PUT, [{ ...tupleOf(key, Counter.ZERO.increment('intruder', 1)), generation: { wallMs: Date.now() + 1_000_000_000, logical: 0 } }]);
    const after = await getRaw(key);
    await expectHealthyAndUnchanged();
    expect(after, 'a forged generation replaced the value').toEqual(before);
    expect(codeOf(tuple)).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
  });
});
