/**
 * Test support, the test-only face of protocol/ (tests of other folders import it as
 * `protocol/testing.js`): fast-check arbitraries for valid envelopes of every body type, for user
 * values, and the normaliser that compares envelopes modulo protobuf defaults.
 */
import fc from 'fast-check';
import { pb } from './messages.js';
import type { PbTypes } from './messages.js';
import { describeFields } from './validate.js';
import type { FieldDescription, MessageTypeName } from './validate.js';

/** Any well-formed string, possibly empty (optional string fields). */
const text = fc.string({ unit: 'grapheme', maxLength: 12 });
/** A non-empty well-formed string (required string fields). */
const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
/** A map key: non-empty, and not "__proto__" (which validation refuses). */
const mapKey = name.filter((key) => key !== '__proto__');
const bytes = fc.uint8Array({ maxLength: 32 });
const someBytes = fc.uint8Array({ minLength: 1, maxLength: 32 });
const u32 = fc.nat({ max: 0xffff_ffff });
const u53 = fc.maxSafeNat();
const positiveU53 = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const finiteDouble = fc.double({ noNaN: true, noDefaultInfinity: true });
/** A transport address (address.ts): tcp:// with an IPv4, IPv6 or DNS host, or a mem:// name. */
export const addressArbitrary: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).filter(([host]) => host !== '0.0.0.0').map(([host, port]) => `tcp://${host}:${port}`),
  fc.tuple(fc.domain(), fc.integer({ min: 1, max: 65535 })).filter(([host]) => !/^[0-9.]+$/.test(host)).map(([host, port]) => `tcp://${host}:${port}`),
  fc.constantFrom('tcp://[::1]:7000', 'tcp://[fe80::1]:1', 'tcp://[2001:db8::ff00:42:8329]:65535'),
  fc.stringMatching(/^[0-9A-Za-z._:-]{1,16}$/).map((name) => `mem://${name}`),
);
const address = addressArbitrary;
/** What a service announces (validate.ts `endpoint`): a transport address or an ingress's HTTP URL. */
const endpoint = fc.oneof(addressArbitrary, fc.tuple(fc.constantFrom('http', 'https'), fc.ipV4(), fc.integer({ min: 1, max: 65535 })).filter(([, host]) => host !== '0.0.0.0').map(([scheme, host, port]) => `${scheme}://${host}:${port}`));
/** An address or the empty string (optional address fields). */
const optionalAddress = fc.oneof(fc.constant(''), addressArbitrary);

/** The non-zero values an enum declares. */
function enumValue<T extends number>(enumObject: object): fc.Arbitrary<T> {
  return fc.constantFrom(...(Object.values(enumObject) as T[]).filter((value) => value !== 0));
}
/** An enum value or 0 (unspecified), for optional enum fields. */
function optionalEnumValue<T extends number>(enumObject: object): fc.Arbitrary<T> {
  return fc.constantFrom(...(Object.values(enumObject) as T[]));
}

/** A wire `Error` with a known, non-zero code. */
export const wireErrorArbitrary: fc.Arbitrary<PbTypes.IError> = fc.record({ code: enumValue<PbTypes.ErrorCode>(pb.ErrorCode), message: text, stack: text }, { requiredKeys: ['code', 'message'] });

const timestamp: fc.Arbitrary<PbTypes.ITimestamp> = fc.record({ wallMs: u53, logical: u32 });
const keyTuple: fc.Arbitrary<PbTypes.IKeyTuple> = fc.record(
  { key: name, latticeType: fc.nat({ max: 20 }), payload: bytes, error: wireErrorArbitrary, deleted: fc.boolean(), generation: timestamp },
  { requiredKeys: ['key'] },
);
const nodeInfo: fc.Arbitrary<PbTypes.INodeInfo> = fc.record({
  id: name,
  tier: enumValue<PbTypes.Tier>(pb.Tier),
  address,
  shardAddresses: fc.array(address, { maxLength: 3 }),
  virtualNodes: u32,
  incarnation: u53,
  departed: fc.boolean(),
  metricsPort: u32,
});
const ringUpdate: fc.Arbitrary<PbTypes.IRingUpdate> = fc.record({
  epoch: u53,
  nodes: fc.array(nodeInfo, { maxLength: 3 }),
  replication: fc.array(fc.record({ key: name, tier: enumValue<PbTypes.Tier>(pb.Tier), global: u32, local: u32, setAt: timestamp }), { maxLength: 2 }),
  defaultGlobal: u32,
  defaultLocal: u32,
});
const histogram: fc.Arbitrary<PbTypes.ILatencyHistogram> = fc
  .array(fc.tuple(finiteDouble, u53), { maxLength: 4 })
  .map((buckets) => ({ boundsUs: buckets.map(([bound]) => bound), counts: buckets.map(([, count]) => count) }));
const statsReport: fc.Arbitrary<PbTypes.IStatsReport> = fc.record(
  {
    nodeId: name,
    shard: u32,
    occupancyBytes: u53,
    keyCount: u53,
    requestsPerSecond: finiteDouble,
    latency: histogram,
    hotKeys: fc.array(fc.record({ key: name, rate: finiteDouble }), { maxLength: 3 }),
    sentAtMs: u53,
    busyUs: u53,
  },
  { requiredKeys: ['nodeId'] },
);
const executorStatus: fc.Arbitrary<PbTypes.IExecutorStatus> = fc.record(
  {
    executorId: name,
    address,
    utilisation: finiteDouble,
    warmFunctions: fc.array(name, { maxLength: 3 }),
    cachedKeys: fc.array(name, { maxLength: 3 }),
    memoryFreeMb: u32,
    sentAtMs: u53,
    ackedSeq: u53,
    running: fc.array(name, { maxLength: 3 }),
    capacity: u32,
    demand: finiteDouble,
    functions: fc.array(fc.record({ name, rate: finiteDouble, p50Ms: finiteDouble, p99Ms: finiteDouble, errors: finiteDouble }, { requiredKeys: ['name'] }), { maxLength: 2 }),
    stems: u32,
  },
  { requiredKeys: ['executorId', 'address'] },
);
const argument: fc.Arbitrary<PbTypes.IArgument> = fc.oneof(fc.record({ value: someBytes }), fc.record({ reference: name }));
const argumentsMap = fc.dictionary(mapKey, fc.record({ args: fc.array(argument, { maxLength: 3 }) }), { minKeys: 1, maxKeys: 3 });
const cutEntry: fc.Arbitrary<PbTypes.ICutEntry> = fc.record(
  { key: name, clock: fc.record({ entries: fc.dictionary(mapKey, u53, { minKeys: 1, maxKeys: 3 }) }), holder: optionalAddress },
  { requiredKeys: ['key'] },
);

/**
 * One arbitrary of valid bodies per body field of the envelope (every member of its `oneof body`).
 * Optional fields are sometimes absent and sometimes hold their default value.
 */
export const envelopeBodyArbitraries: { readonly [Body in NonNullable<PbTypes.Envelope['body']>]: fc.Arbitrary<NonNullable<PbTypes.IEnvelope[Body]>> } = {
  errorReply: fc.record({ error: wireErrorArbitrary }),
  echo: fc.record({ payload: bytes }, { requiredKeys: [] }),
  kvsRequest: fc.record(
    {
      kind: enumValue<PbTypes.RequestKind>(pb.RequestKind),
      tuples: fc.array(keyTuple, { minLength: 1, maxLength: 4 }),
      ack: optionalEnumValue<PbTypes.AckMode>(pb.AckMode),
      fromReplica: fc.boolean(),
    },
    { requiredKeys: ['kind', 'tuples'] },
  ),
  kvsResponse: fc.record({ tuples: fc.array(keyTuple, { maxLength: 4 }), ring: ringUpdate }, { requiredKeys: [] }),
  keyAddressRequest: fc.record({ keys: fc.array(name, { minLength: 1, maxLength: 4 }), tier: optionalEnumValue<PbTypes.Tier>(pb.Tier) }, { requiredKeys: ['keys'] }),
  keyAddressResponse: fc.record(
    { addresses: fc.array(fc.record({ key: name, replicas: fc.array(address, { maxLength: 3 }) }), { maxLength: 3 }), error: wireErrorArbitrary, ringEpoch: u53 },
    { requiredKeys: [] },
  ),
  nodeJoin: fc.record({ node: nodeInfo }),
  nodeDepart: fc.record({ nodeId: name, graceful: fc.boolean() }),
  ringUpdate,
  heartbeat: fc.record({ nodeId: name, ringEpoch: u53, sentAtMs: u53 }, { requiredKeys: ['nodeId'] }),
  gossip: fc.record({ fromNode: address, tuples: fc.array(keyTuple, { maxLength: 4 }) }),
  digestExchange: fc.record({
    fromNode: address,
    ranges: fc.array(fc.record({ rangeStart: u53, rangeEnd: u53, digest: bytes, keyCount: u32 }), { maxLength: 3 }),
    isReply: fc.boolean(),
  }),
  ringRequest: fc.record({ subscriber: address, leaseMs: u32 }, { requiredKeys: ['subscriber'] }),
  subscribe: fc.record({ subscriber: address, keys: fc.array(name, { minLength: 1, maxLength: 4 }), leaseMs: u32 }),
  unsubscribe: fc.record({ subscriber: address, keys: fc.array(name, { maxLength: 4 }) }),
  keyUpdate: fc.record({ tuples: fc.array(keyTuple, { minLength: 1, maxLength: 4 }) }),
  statsReport,
  registerFunction: fc.record({
    spec: fc.record(
      { name, version: u32, code: someBytes, memoryMb: u32, timeoutMs: u32, keepAliveMs: u32, concurrency: u32, registeredAtMs: u53, keepAlivePolicy: text, reads: fc.array(name, { maxLength: 3 }), sourceMap: text },
      { requiredKeys: ['name', 'code'] },
    ),
  }),
  registerFunctionResponse: fc.record({ name: text, version: u32, error: wireErrorArbitrary }, { requiredKeys: [] }),
  registerDag: fc.record({
    spec: fc.record({
      name,
      functions: fc.array(name, { minLength: 1, maxLength: 4 }),
      edges: fc.array(fc.record({ fromFunction: name, toFunction: name }), { maxLength: 3 }),
    }),
  }),
  callRequest: fc.record(
    {
      callId: name,
      function: name,
      version: u32,
      args: fc.array(argument, { maxLength: 3 }),
      consistency: optionalEnumValue<PbTypes.Consistency>(pb.Consistency),
      async: fc.boolean(),
      resultKey: text,
      timeoutMs: u32,
      idempotent: fc.boolean(),
    },
    { requiredKeys: ['callId', 'function'] },
  ),
  callResponse: fc.record({ callId: name, result: bytes, error: wireErrorArbitrary }, { requiredKeys: ['callId'] }),
  dagCall: fc.record(
    {
      callId: name,
      dag: name,
      args: argumentsMap,
      consistency: optionalEnumValue<PbTypes.Consistency>(pb.Consistency),
      async: fc.boolean(),
      resultKey: text,
      timeoutMs: u32,
      idempotent: fc.boolean(),
    },
    { requiredKeys: ['callId', 'dag'] },
  ),
  cancelCall: fc.record({ callId: name }),
  cancelCallResponse: fc.record({ cancelled: fc.boolean(), error: wireErrorArbitrary }, { requiredKeys: [] }),
  schedule: fc.record(
    {
      runId: name,
      dag: text,
      functions: fc.array(
        fc.record(
          { name, version: fc.integer({ min: 1, max: 0xffffffff }), executor: address, args: fc.array(argument, { maxLength: 2 }), successors: fc.array(name, { maxLength: 2 }), parents: u32, parentNames: fc.array(name, { maxLength: 2 }) },
          { requiredKeys: ['name', 'version', 'executor'] },
        ),
        { minLength: 1, maxLength: 3 },
      ),
      consistency: optionalEnumValue<PbTypes.Consistency>(pb.Consistency),
      replyTo: optionalAddress,
      replyRequestId: u53,
      resultKey: text,
      timeoutMs: fc.integer({ min: 1, max: 0xffffffff }),
      scheduler: optionalAddress,
      dispatchSeq: u53,
      attempt: u32,
      traceId: text,
    },
    { requiredKeys: ['runId', 'functions', 'timeoutMs'] },
  ),
  trigger: fc.record(
    { runId: name, sourceFunction: name, targetFunction: name, value: bytes, cut: fc.array(cutEntry, { maxLength: 3 }), error: wireErrorArbitrary },
    { requiredKeys: ['runId', 'sourceFunction', 'targetFunction'] },
  ),
  listFunctions: fc.record({ name: text }, { requiredKeys: [] }),
  functionList: fc.record(
    {
      functions: fc.array(
        fc.record({ name, latest: u32, versions: fc.array(u32, { maxLength: 3 }), memoryMb: u32, timeoutMs: u32, keepAliveMs: u32, codeBytes: u32, registeredAtMs: u53, keepAlivePolicy: text, reads: fc.array(name, { maxLength: 3 }) }, { requiredKeys: ['name'] }),
        { maxLength: 3 },
      ),
      error: wireErrorArbitrary,
    },
    { requiredKeys: [] },
  ),
  deleteFunction: fc.record({ name, version: u32 }, { requiredKeys: ['name'] }),
  done: fc.record({ error: wireErrorArbitrary }, { requiredKeys: [] }),
  listDags: fc.record({ name: text }, { requiredKeys: [] }),
  dagList: fc.record(
    {
      dags: fc.array(
        fc.record({ name, functions: fc.array(name, { minLength: 1, maxLength: 3 }), edges: fc.array(fc.record({ fromFunction: name, toFunction: name }), { maxLength: 2 }) }),
        { maxLength: 2 },
      ),
      error: wireErrorArbitrary,
    },
    { requiredKeys: [] },
  ),
  deleteDag: fc.record({ name }),
  invocationMessage: fc.record({ runId: name, sourceFunction: text, targetFunction: name, payload: bytes }, { requiredKeys: ['runId', 'targetFunction'] }),
  versionRequest: fc.record({ runId: name, key: name, first: fc.boolean() }, { requiredKeys: ['runId', 'key'] }),
  versionReply: fc.record({ payload: bytes, error: wireErrorArbitrary }, { requiredKeys: [] }),
  runFinished: fc.record({ runId: name }),
  clusterStatsRequest: fc.constant({}),
  clusterStats: fc.record(
    {
      nodes: fc.array(nodeInfo, { maxLength: 2 }),
      shards: fc.array(statsReport, { maxLength: 2 }),
      executors: fc.array(executorStatus, { maxLength: 2 }),
      replicationMax: u32,
      replicationDefault: u32,
    },
    { requiredKeys: [] },
  ),
  pinCounts: fc.record({ counts: fc.array(fc.record({ name, count: u32 }, { requiredKeys: ['name'] }), { maxLength: 3 }), validMs: u32 }, { requiredKeys: [] }),
  prepare: fc.record({ functions: fc.array(fc.record({ name, version: fc.integer({ min: 1, max: 0xffffffff }) }), { minLength: 1, maxLength: 3 }) }),
  executorStatus,
  logsRequest: fc.record({ name: text, sinceMs: u53, callId: text, afterSeq: u53, limit: u32 }, { requiredKeys: [] }),
  logsReply: fc.record(
    {
      records: fc.array(
        fc.record({ seq: u53, timeMs: u53, function: name, version: u32, callId: text, level: fc.constantFrom('log', 'info', 'warn', 'error', 'debug'), text, fields: text }, { requiredKeys: ['function'] }),
        { maxLength: 3 },
      ),
      executorId: text,
      executors: fc.array(address, { maxLength: 2 }),
      truncated: fc.boolean(),
      error: wireErrorArbitrary,
    },
    { requiredKeys: [] },
  ),
  invocationsRequest: fc.record({ name: text, runningOnly: fc.boolean(), limit: u32 }, { requiredKeys: [] }),
  serviceAnnounce: fc.record({ role: enumValue<PbTypes.ServiceRole>(pb.ServiceRole), address: endpoint, ttlMs: u32, departing: fc.boolean() }, { requiredKeys: ['role', 'address'] }),
  servicesRequest: fc.constant({}),
  serviceList: fc.record({ schedulers: fc.array(address, { maxLength: 2 }), ingresses: fc.array(endpoint, { maxLength: 2 }), monitors: fc.array(address, { maxLength: 2 }) }, { requiredKeys: [] }),
  invocationList: fc.record(
    {
      invocations: fc.array(
        fc.record(
          { callId: name, name: text, dag: fc.boolean(), state: enumValue<PbTypes.InvocationState>(pb.InvocationState), error: wireErrorArbitrary, node: optionalAddress, startedAtMs: u53, durationMs: u32, mode: fc.constantFrom('sync', 'async', 'direct') },
          { requiredKeys: ['callId', 'state'] },
        ),
        { maxLength: 3 },
      ),
      executors: fc.array(address, { maxLength: 2 }),
      error: wireErrorArbitrary,
    },
    { requiredKeys: [] },
  ),
};

/** Envelope bodies of every kind, all valid: `{ kvsRequest: {...} }`, `{ echo: {...} }`... */
export const envelopeBodyArbitrary: fc.Arbitrary<PbTypes.IEnvelope> = fc.oneof(
  ...Object.entries(envelopeBodyArbitraries).map(([body, arbitrary]) =>
    (arbitrary as fc.Arbitrary<unknown>).map((value): PbTypes.IEnvelope => ({ [body]: value }) as PbTypes.IEnvelope),
  ),
);

/** A valid header: one-way, a request (id and reply address) or a response, with sender and trace id. */
const header: fc.Arbitrary<PbTypes.IEnvelope> = fc
  .tuple(
    fc.oneof(
      fc.constant({}),
      fc.record({ requestId: positiveU53, replyTo: address }),
      fc.record({ responseTo: positiveU53 }),
    ),
    fc.record({ sender: optionalAddress, traceId: text }, { requiredKeys: [] }),
  )
  .map(([kind, extra]) => ({ ...kind, ...extra }));

/** Whole valid envelopes: a body of any kind plus a header. */
export const envelopeArbitrary: fc.Arbitrary<PbTypes.IEnvelope> = fc
  .tuple(envelopeBodyArbitrary, header)
  .map(([body, head]) => ({ ...head, ...body }));

/**
 * An envelope (decoded instance or plain object) as plain data modulo protobuf's defaults, for deep
 * comparison: fields holding a default value (0, '', false, empty bytes, empty list or map, null or
 * undefined) are dropped, as protobuf does not carry them; messages are kept even when empty (their
 * presence is carried); bytes become arrays of numbers. Walks by the schema of validate.ts.
 */
export function normaliseEnvelope(envelope: object): unknown {
  return normaliseMessage(envelope, 'Envelope');
}

function normaliseMessage(message: object, type: MessageTypeName): Record<string, unknown> {
  const record = message as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of describeFields(type)) {
    const value = record[field.field];
    if (value === undefined || value === null) continue;
    if (field.shape === 'list') {
      if ((value as unknown[]).length > 0) out[field.field] = (value as unknown[]).map((element) => normaliseValue(element, field));
    } else if (field.shape === 'map') {
      const entries = Object.entries(value as object);
      if (entries.length > 0) out[field.field] = Object.fromEntries(entries.map(([key, entry]) => [key, normaliseValue(entry, field)]));
    } else if (field.kind === 'message' || field.oneof !== undefined || !isDefault(value)) {
      // A oneof member is carried even when it holds its default value.
      out[field.field] = normaliseValue(value, field);
    }
  }
  return out;
}

function normaliseValue(value: unknown, field: FieldDescription): unknown {
  if (field.kind === 'message') return normaliseMessage(value as object, field.type as MessageTypeName);
  return value instanceof Uint8Array ? Array.from(value) : value;
}

function isDefault(value: unknown): boolean {
  if (value === 0 || value === '' || value === false) return true;
  return value instanceof Uint8Array && value.byteLength === 0;
}

/**
 * User values the value codec accepts: JSON values plus bigints (64-bit), bytes, dates and
 * `undefined`, nested.
 */
export const userValueArbitrary: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 2 }).filter((json) => !hasProtoKey(json)),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.uint8Array({ maxLength: 32 }),
    fc.date({ noInvalidDate: true }),
    fc.constant(undefined),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 8 }).filter((key) => key !== '__proto__'), tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Whether a JSON value has a "__proto__" key anywhere (fc.jsonValue makes some on purpose). */
function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasProtoKey);
  return Object.keys(value).some((key) => key === '__proto__' || hasProtoKey((value as Record<string, unknown>)[key]));
}
export { VirtualClock } from './virtual-clock.js';
