import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isLfaasError } from '../lattices/index.js';
import { propertyRuns } from '../lattices/testing.js';
import { decodeEnvelope, encodeEnvelope } from './frame.js';
import { pb } from './messages.js';
import type { PbTypes } from './messages.js';
import { envelopeArbitrary } from './testing.js';
import { ENUMS, MESSAGE_SCHEMA, validateDecodedEnvelope, validateEnvelope } from './validate.js';

const protoDir = join(dirname(fileURLToPath(import.meta.url)), 'proto');

/** The .proto files as protobufjs reflection (the schema the generated code was made from). */
function loadProtoRoot(): protobuf.Namespace {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoDir, target);
  root.loadSync(readdirSync(protoDir).filter((file) => file.endsWith('.proto')));
  return root.lookup('lfaas') as protobuf.Namespace;
}

/** The type of a reflected field in the notation of MESSAGE_SCHEMA, without `!` and `+`. */
function reflectedType(field: protobuf.Field): string {
  const base = field.resolvedType?.name ?? field.type;
  if (field instanceof protobuf.MapField) return `map<${base}>`;
  return field.repeated ? `${base}[]` : base;
}

function schemaType(spec: string): string {
  return spec.replaceAll('!', '').replace(/\+$/, '').replaceAll('address', 'string').replaceAll('endpoint', 'string');
}

/** A frame written without validation, as a buggy or hostile peer could send it. */
function rawFrame(envelope: PbTypes.IEnvelope): Uint8Array {
  return encodeEnvelope(envelope);
}

function expectRefused(frame: Uint8Array, code: ErrorCode, pathPrefix: string): void {
  let thrown: unknown;
  try {
    decodeEnvelope(frame);
  } catch (error) {
    thrown = error;
  }
  expect(isLfaasError(thrown), 'decodeEnvelope accepted the frame').toBe(true);
  expect({ code: (thrown as { code: string }).code, message: (thrown as Error).message }).toEqual({
    code,
    message: expect.stringMatching(new RegExp(`^${pathPrefix.replace(/[.[\]()"]/g, '\\$&')}[:.\\[]`)),
  });
}

describe('the validation schema', () => {
  it('lists every message, field, type and oneof of protocol/proto exactly', () => {
    const lfaas = loadProtoRoot();
    const reflected = lfaas.nestedArray.filter((nested): nested is protobuf.Type => nested instanceof protobuf.Type);
    expect(Object.keys(MESSAGE_SCHEMA).sort()).toEqual(reflected.map((type) => type.name).sort());
    for (const type of reflected) {
      type.resolveAll();
      const schema = MESSAGE_SCHEMA[type.name as keyof typeof MESSAGE_SCHEMA] as Record<string, string | Record<string, string>>;
      const expected: Record<string, unknown> = {};
      for (const field of type.fieldsArray) if (field.partOf === null) expected[field.name] = reflectedType(field);
      for (const oneof of type.oneofsArray) expected[oneof.name] = Object.fromEntries(oneof.fieldsArray.map((field) => [field.name, reflectedType(field)]));
      const actual: Record<string, unknown> = {};
      for (const [name, spec] of Object.entries(schema)) {
        actual[name.replace(/!$/, '')] = typeof spec === 'string' ? schemaType(spec) : Object.fromEntries(Object.entries(spec).map(([member, memberSpec]) => [member, schemaType(memberSpec)]));
      }
      expect({ type: type.name, fields: actual }).toEqual({ type: type.name, fields: expected });
    }
  });

  it('knows every enum of protocol/proto, with the generated values', () => {
    const lfaas = loadProtoRoot();
    const reflected = lfaas.nestedArray.filter((nested): nested is protobuf.Enum => nested instanceof protobuf.Enum);
    expect(Object.keys(ENUMS).sort()).toEqual(reflected.map((enumType) => enumType.name).sort());
    for (const enumType of reflected) expect({ ...ENUMS[enumType.name as keyof typeof ENUMS] }).toEqual(enumType.values);
  });
});

describe('validateEnvelope', () => {
  it('accepts every generated valid envelope, decoded or plain', () => {
    fc.assert(
      fc.property(envelopeArbitrary, (envelope) => {
        validateEnvelope(envelope);
        validateEnvelope(pb.Envelope.decode(encodeEnvelope(envelope)));
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  it('the decoded fast path judges every decodable frame as the full check does', () => {
    const outcome = (run: () => void): string => {
      try {
        run();
        return 'valid';
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    fc.assert(
      fc.property(envelopeArbitrary, fc.nat(), fc.nat(), (envelope, flip, cut) => {
        const frame = Uint8Array.from(encodeEnvelope(envelope));
        if (frame.length > 0) frame[flip % frame.length]! ^= 1 << flip % 8;
        let decoded: PbTypes.Envelope;
        try {
          decoded = pb.Envelope.decode(frame.subarray(0, frame.length - (cut % 3)));
        } catch {
          return;
        }
        expect(outcome(() => validateDecodedEnvelope(decoded))).toBe(outcome(() => validateEnvelope(decoded)));
      }),
      { numRuns: propertyRuns(1000) },
    );
  });

  // Each envelope lacks exactly one required thing; the error names its path.
  const missing: ReadonlyArray<readonly [string, PbTypes.IEnvelope]> = [
    ['errorReply.error', { errorReply: {} }],
    ['errorReply.error.code', { errorReply: { error: { message: 'no code' } } }],
    ['kvsRequest.kind', { kvsRequest: { tuples: [{ key: 'k' }] } }],
    ['kvsRequest.tuples', { kvsRequest: { kind: pb.RequestKind.GET } }],
    ['kvsRequest.tuples[1].key', { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'a' }, { payload: new Uint8Array([1]) }] } }],
    ['kvsRequest.tuples[0].error.code', { kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key: 'a', error: { message: 'x' } }] } }],
    ['kvsResponse.ring.nodes[0].address', { kvsResponse: { ring: { nodes: [{ id: 'n', tier: pb.Tier.TIER_MEMORY }] } } }],
    ['keyAddressRequest.keys', { keyAddressRequest: { tier: pb.Tier.TIER_DISK } }],
    ['keyAddressRequest.keys[1]', { keyAddressRequest: { keys: ['a', ''] } }],
    ['keyAddressResponse.addresses[0].key', { keyAddressResponse: { addresses: [{ replicas: ['r'] }] } }],
    ['keyAddressResponse.addresses[0].replicas[0]', { keyAddressResponse: { addresses: [{ key: 'k', replicas: [''] }] } }],
    ['nodeJoin.node', { nodeJoin: {} }],
    ['nodeJoin.node.id', { nodeJoin: { node: { address: 'mem://a', tier: pb.Tier.TIER_MEMORY } } }],
    ['nodeJoin.node.tier', { nodeJoin: { node: { id: 'n', address: 'mem://a' } } }],
    ['nodeDepart.nodeId', { nodeDepart: { graceful: true } }],
    ['ringUpdate.replication[0].tier', { ringUpdate: { replication: [{ key: 'k', global: 3 }] } }],
    ['heartbeat.nodeId', { heartbeat: { ringEpoch: 4 } }],
    ['gossip.fromNode', { gossip: { tuples: [{ key: 'k' }] } }],
    ['digestExchange.fromNode', { digestExchange: {} }],
    ['subscribe.subscriber', { subscribe: { keys: ['k'] } }],
    ['subscribe.keys', { subscribe: { subscriber: 'mem://s' } }],
    ['unsubscribe.subscriber', { unsubscribe: { keys: ['k'] } }],
    ['keyUpdate.tuples', { keyUpdate: {} }],
    ['statsReport.nodeId', { statsReport: { shard: 1 } }],
    ['statsReport.hotKeys[0].key', { statsReport: { nodeId: 'n', hotKeys: [{ rate: 2 }] } }],
    ['registerFunction.spec', { registerFunction: {} }],
    ['registerFunction.spec.name', { registerFunction: { spec: { code: new Uint8Array([1]) } } }],
    ['registerFunction.spec.code', { registerFunction: { spec: { name: 'f' } } }],
    ['registerDag.spec.name', { registerDag: { spec: { functions: ['f'] } } }],
    ['registerDag.spec.functions', { registerDag: { spec: { name: 'd' } } }],
    ['registerDag.spec.edges[0].toFunction', { registerDag: { spec: { name: 'd', functions: ['f'], edges: [{ fromFunction: 'f' }] } } }],
    ['callRequest.callId', { callRequest: { function: 'f' } }],
    ['callRequest.function', { callRequest: { callId: 'c' } }],
    ['callRequest.args[1].kind', { callRequest: { callId: 'c', function: 'f', args: [{ reference: 'k' }, {}] } }],
    ['callRequest.args[0].value', { callRequest: { callId: 'c', function: 'f', args: [{ value: new Uint8Array() }] } }],
    ['callResponse.callId', { callResponse: { result: new Uint8Array([1]) } }],
    ['dagCall.dag', { dagCall: { callId: 'c' } }],
    ['dagCall.args["f"].args[0].kind', { dagCall: { callId: 'c', dag: 'd', args: { f: { args: [{}] } } } }],
    ['schedule.runId', { schedule: { timeoutMs: 5, functions: [{ name: 'f', version: 1, executor: 'mem://e' }] } }],
    ['schedule.functions', { schedule: { runId: 'r', timeoutMs: 5 } }],
    ['schedule.functions[0].executor', { schedule: { runId: 'r', timeoutMs: 5, functions: [{ name: 'f', version: 1, executor: '' }] } }],
    ['schedule.timeoutMs', { schedule: { runId: 'r', functions: [{ name: 'f', version: 1, executor: 'mem://e' }] } }],
    ['trigger.runId', { trigger: { sourceFunction: 's', targetFunction: 't' } }],
    ['trigger.targetFunction', { trigger: { runId: 'r', sourceFunction: 's' } }],
    ['trigger.cut[0].key', { trigger: { runId: 'r', sourceFunction: 's', targetFunction: 't', cut: [{ holder: 'h' }] } }],
    ['trigger.cut[0].clock.entries[""]', { trigger: { runId: 'r', sourceFunction: 's', targetFunction: 't', cut: [{ key: 'k', clock: { entries: { '': 1 } } }] } }],
    ['executorStatus.executorId', { executorStatus: { address: 'mem://a' } }],
    ['executorStatus.address', { executorStatus: { executorId: 'e' } }],
    ['executorStatus.warmFunctions[0]', { executorStatus: { executorId: 'e', address: 'mem://a', warmFunctions: [''] } }],
    ['replyTo', { requestId: 7, echo: {} }],
    ['requestId', { replyTo: 'tcp://127.0.0.1:1', echo: {} }],
  ];
  it.each(missing)('refuses a missing %s with PROTO_MISSING_FIELD naming it', (path, envelope) => {
    expectRefused(rawFrame(envelope), ErrorCode.PROTO_MISSING_FIELD, path);
    expect(() => encodeEnvelope(envelope, { validate: true })).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MISSING_FIELD }));
  });

  it('removing any one field of a valid envelope keeps it valid or names that field (or its message) in the error', () => {
    fc.assert(
      fc.property(envelopeArbitrary, fc.nat(), (envelope, pick) => {
        const paths = fieldPaths(envelope, '');
        const chosen = paths[pick % paths.length];
        if (chosen === undefined) return;
        const damaged = structuredClone(envelope) as Record<string, unknown>;
        deleteAt(damaged, chosen.steps);
        try {
          decodeEnvelope(encodeEnvelope(damaged));
        } catch (error) {
          expect(isLfaasError(error)).toBe(true);
          const { code, message } = error as { code: string; message: string };
          if (code === ErrorCode.PROTO_UNKNOWN_MESSAGE) {
            expect(chosen.parent).toBe(''); // only removing the body itself
            return;
          }
          expect([ErrorCode.PROTO_MISSING_FIELD, ErrorCode.PROTO_MALFORMED]).toContain(code);
          const namesField = message.startsWith(`${chosen.path}:`);
          const namesParent = chosen.parent === '' ? /^(requestId|replyTo):/.test(message) : message.startsWith(`${chosen.parent}:`) || message.startsWith(`${chosen.parent}.`);
          expect(namesField || namesParent, `${message} after removing ${chosen.path}`).toBe(true);
        }
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  const enumFields: ReadonlyArray<readonly [string, keyof typeof ENUMS, (value: number) => PbTypes.IEnvelope]> = [
    ['kvsRequest.kind', 'RequestKind', (value) => ({ kvsRequest: { kind: value, tuples: [{ key: 'k' }] } })],
    ['kvsRequest.ack', 'AckMode', (value) => ({ kvsRequest: { kind: pb.RequestKind.PUT, ack: value, tuples: [{ key: 'k' }] } })],
    ['kvsRequest.tuples[0].error.code', 'ErrorCode', (value) => ({ kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key: 'k', error: { code: value } }] } })],
    ['errorReply.error.code', 'ErrorCode', (value) => ({ errorReply: { error: { code: value } } })],
    ['keyAddressRequest.tier', 'Tier', (value) => ({ keyAddressRequest: { keys: ['k'], tier: value } })],
    ['nodeJoin.node.tier', 'Tier', (value) => ({ nodeJoin: { node: { id: 'n', address: 'mem://a', tier: value } } })],
    ['ringUpdate.replication[0].tier', 'Tier', (value) => ({ ringUpdate: { replication: [{ key: 'k', tier: value }] } })],
    ['callRequest.consistency', 'Consistency', (value) => ({ callRequest: { callId: 'c', function: 'f', consistency: value } })],
    ['dagCall.consistency', 'Consistency', (value) => ({ dagCall: { callId: 'c', dag: 'd', consistency: value } })],
    ['schedule.consistency', 'Consistency', (value) => ({ schedule: { runId: 'r', timeoutMs: 5, functions: [{ name: 'f', version: 1, executor: 'mem://e' }], consistency: value } })],
  ];
  it.each(enumFields)('refuses an unknown %s with PROTO_UNKNOWN_ENUM naming it', (path, enumName, build) => {
    const known = new Set(Object.values(ENUMS[enumName] as unknown as Record<string, number>));
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).filter((value) => !known.has(value)),
        (value) => expectRefused(rawFrame(build(value)), ErrorCode.PROTO_UNKNOWN_ENUM, path),
      ),
      { numRuns: propertyRuns(50) },
    );
    // Every known value passes.
    for (const value of known) if (value !== 0) decodeEnvelope(rawFrame(build(value)));
  });

  const uint64Fields: ReadonlyArray<readonly [string, (value: number) => PbTypes.IEnvelope]> = [
    ['requestId', (value) => ({ requestId: value, replyTo: 'mem://a', echo: {} })],
    ['responseTo', (value) => ({ responseTo: value, echo: {} })],
    ['heartbeat.sentAtMs', (value) => ({ heartbeat: { nodeId: 'n', sentAtMs: value } })],
    ['ringUpdate.epoch', (value) => ({ ringUpdate: { epoch: value } })],
    ['statsReport.latency.counts[1]', (value) => ({ statsReport: { nodeId: 'n', latency: { boundsUs: [1, 2], counts: [1, value] } } })],
    ['trigger.cut[0].clock.entries["w"]', (value) => ({ trigger: { runId: 'r', sourceFunction: 's', targetFunction: 't', cut: [{ key: 'k', clock: { entries: { w: value } } }] } })],
    ['schedule.dispatchSeq', (value) => ({ schedule: { runId: 'r', timeoutMs: 5, functions: [{ name: 'f', version: 1, executor: 'mem://e' }], dispatchSeq: value } })],
  ];
  it.each(uint64Fields)('refuses %s at or beyond 2^53 with PROTO_MALFORMED naming it', (path, build) => {
    fc.assert(
      fc.property(fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n }), (value) => expectRefused(rawFrame(build(Number(value))), ErrorCode.PROTO_MALFORMED, path)),
      { numRuns: propertyRuns(30) },
    );
    const largest = decodeEnvelope(rawFrame(build(Number.MAX_SAFE_INTEGER)));
    expect(largest.body).toBeDefined();
  });

  it('refuses non-finite doubles', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expectRefused(rawFrame({ executorStatus: { executorId: 'e', address: 'mem://a', utilisation: value } }), ErrorCode.PROTO_MALFORMED, 'executorStatus.utilisation');
      expectRefused(rawFrame({ statsReport: { nodeId: 'n', latency: { boundsUs: [value], counts: [1] } } }), ErrorCode.PROTO_MALFORMED, 'statsReport.latency.boundsUs[0]');
    }
  });

  it('refuses a histogram whose counts and bounds differ in length', () => {
    expectRefused(rawFrame({ statsReport: { nodeId: 'n', latency: { boundsUs: [1, 2], counts: [1] } } }), ErrorCode.PROTO_MALFORMED, 'statsReport.latency');
  });

  it('caps every repeated field and map at maxListLength', () => {
    const cases: ReadonlyArray<readonly [string, PbTypes.IEnvelope]> = [
      ['subscribe.keys', { subscribe: { subscriber: 'mem://s', keys: ['a', 'b', 'c'] } }],
      ['kvsRequest.tuples', { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'a' }, { key: 'b' }, { key: 'c' }] } }],
      ['statsReport.latency.boundsUs', { statsReport: { nodeId: 'n', latency: { boundsUs: [1, 2, 3], counts: [1, 2, 3] } } }],
      ['schedule.functions', { schedule: { runId: 'r', timeoutMs: 5, functions: [{ name: 'f', version: 1, executor: 'mem://a' }, { name: 'g', version: 1, executor: 'mem://b' }, { name: 'h', version: 1, executor: 'mem://c' }] } }],
    ];
    for (const [path, envelope] of cases) {
      const frame = rawFrame(envelope);
      expect(() => decodeEnvelope(frame, { maxListLength: 2 })).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED, message: expect.stringContaining(path) }));
      expect(decodeEnvelope(frame, { maxListLength: 3 }).body).toBeDefined();
    }
  });

  it('refuses an envelope that is both a request and a response', () => {
    expectRefused(rawFrame({ requestId: 1, replyTo: 'mem://a', responseTo: 2, echo: {} }), ErrorCode.PROTO_MALFORMED, 'responseTo');
  });

  it('refuses "__proto__" map keys and hand-built objects with two oneof members', () => {
    expectRefused(rawFrame({ dagCall: { callId: 'c', dag: 'd', args: JSON.parse('{"__proto__":{}}') as Record<string, PbTypes.IArguments> } }), ErrorCode.PROTO_MALFORMED, 'dagCall.args["__proto__"]');
    expect(() => validateEnvelope({ echo: {}, heartbeat: { nodeId: 'n' } })).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED, message: expect.stringContaining('body') }));
    // Named in the schema's order, whatever order the object's keys are in.
    expect(() => validateEnvelope({ heartbeat: { nodeId: 'n' }, echo: {} })).toThrow('body: echo and heartbeat both set');
    expect(() => validateEnvelope({ callRequest: { callId: 'c', function: 'f', args: [{ value: new Uint8Array([1]), reference: 'k' }] } })).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED, message: expect.stringContaining('callRequest.args[0].kind') }),
    );
  });

  it('decodes a frame holding two body fields as protobuf says: the last one read wins, the other is gone', () => {
    // Two encoded envelopes back to back are one envelope with both fields, in that order.
    const first = encodeEnvelope({ echo: { payload: new Uint8Array([1]) } });
    const second = encodeEnvelope({ heartbeat: { nodeId: 'n' } });
    for (const [bytes, body, gone] of [
      [Buffer.concat([first, second]), 'heartbeat', 'echo'],
      [Buffer.concat([second, first]), 'echo', 'heartbeat'],
    ] as const) {
      const decoded = decodeEnvelope(bytes);
      expect(decoded.body).toBe(body);
      expect(Object.keys(decoded)).not.toContain(gone);
      expect(decoded[gone]).toBeNull();
    }
  });

  it('refuses strings that are not well-formed Unicode before they are encoded', () => {
    expect(() => encodeEnvelope({ heartbeat: { nodeId: 'a\ud800' } }, { validate: true })).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED, message: expect.stringContaining('heartbeat.nodeId') }),
    );
  });

  it('refuses values of the wrong JavaScript type in hand-built envelopes', () => {
    const wrong: ReadonlyArray<readonly [string, unknown]> = [
      ['heartbeat.nodeId', { heartbeat: { nodeId: 5 } }],
      ['heartbeat.sentAtMs', { heartbeat: { nodeId: 'n', sentAtMs: -1 } }],
      ['subscribe.leaseMs', { subscribe: { subscriber: 'mem://s', keys: ['k'], leaseMs: 2 ** 32 } }],
      ['echo.payload', { echo: { payload: 'text' } }],
      ['subscribe.keys', { subscribe: { subscriber: 'mem://s', keys: 'k' } }],
      ['nodeDepart.graceful', { nodeDepart: { nodeId: 'n', graceful: 1 } }],
    ];
    for (const [path, envelope] of wrong) {
      expect(() => validateEnvelope(envelope as object)).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED, message: expect.stringContaining(path) }));
    }
  });
});

interface FieldPath {
  readonly steps: readonly (string | number)[];
  readonly path: string;
  readonly parent: string;
}

/** Every object key of a plain envelope (not list positions), with its validation path. */
function fieldPaths(value: unknown, path: string, steps: readonly (string | number)[] = []): FieldPath[] {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return [];
  const out: FieldPath[] = [];
  if (Array.isArray(value)) {
    value.forEach((element, index) => out.push(...fieldPaths(element, `${path}[${index}]`, [...steps, index])));
    return out;
  }
  const isMap = steps.length > 0 && MAP_FIELDS.has(String(steps.at(-1)));
  for (const [key, child] of Object.entries(value)) {
    if (isMap) {
      out.push(...fieldPaths(child, `${path}[${JSON.stringify(key)}]`, [...steps, key]));
      continue;
    }
    const childPath = path === '' ? key : `${path}.${key}`;
    out.push({ steps: [...steps, key], path: childPath, parent: path });
    out.push(...fieldPaths(child, childPath, [...steps, key]));
  }
  return out;
}

/** Fields that are maps (when their value is an object; CallRequest.args is a list). */
const MAP_FIELDS = new Set(['args', 'placement', 'entries']);

function deleteAt(root: Record<string, unknown>, steps: readonly (string | number)[]): void {
  let node: unknown = root;
  for (const step of steps.slice(0, -1)) node = (node as Record<string | number, unknown>)[step];
  delete (node as Record<string | number, unknown>)[steps.at(-1) as string | number];
}
