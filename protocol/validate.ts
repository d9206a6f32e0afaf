/**
 * Validation of envelopes, after protobuf decoding and (optionally) before encoding.
 *
 * protobuf decoding accepts far too much: unknown enum numbers are kept, absent fields read as
 * defaults, 64-bit integers beyond 2^53 lose precision silently, and garbage sometimes parses. So
 * every frame is checked against {@link MESSAGE_SCHEMA}, one line per message type, before a node
 * sees it. A failure is an `LfaasError` whose message starts with the path of the offending field
 * (`kvsRequest.tuples[3].key: required`):
 * - PROTO_MISSING_FIELD: a required field is absent or empty, a list that needs an entry has none;
 * - PROTO_UNKNOWN_ENUM: an enum field holds a number this version does not know;
 * - PROTO_MALFORMED: a 64-bit integer at or beyond 2^53, a non-finite double, a list or map longer
 *   than `maxListLength`, a `"__proto__"` map key, a string that is not well-formed Unicode, two
 *   members of one oneof set (only hand-built objects can), a cross-field rule broken (a latency
 *   histogram with fewer counts than bounds), a request that is also a response;
 * - PROTO_UNKNOWN_MESSAGE: the envelope has no body.
 *
 * Header rules (envelope.proto): a request carries `requestId` and `replyTo` together (one without
 * the other is refused); a response carries `responseTo`. An envelope is a request or a response,
 * never both: `Rpc` routes on `responseTo` alone, so the request half of such an envelope would be
 * silently ignored. A forwarded request keeps its `requestId`/`replyTo` and sets no `responseTo`.
 *
 * The walk is bounded: the schema has no recursive message (checked when this module loads), so
 * its depth is the schema's (five levels at most), and every element it visits was decoded from
 * the frame, whose size is capped.
 */
import { ErrorCode, LfaasError, isWellFormedString } from '../lattices/index.js';
import { isServiceUrl, isTransportAddress } from './address.js';
import { pb } from './messages.js';

/**
 * The schema: message type -> field -> type, in the generated (camelCase) field names. Every field
 * of every message of protocol/proto is listed (a test compares this table with the .proto files).
 *
 * A type is:
 * - a scalar: `string`, `bytes`, `bool`, `uint32`, `uint64`, `double`, or `address` (a string that,
 *   when set, is a transport address by the rule of address.ts: what a node may send to), or
 *   `endpoint` (a transport address or an HTTP(S) URL, `isServiceUrl`: an announced service);
 * - an enum name (`RequestKind`): the value must be one the enum declares;
 * - a message name (`KeyTuple`): validated recursively;
 * - `T[]` a repeated field, `T[]+` one that needs at least one entry;
 * - `map<T>` a `map<string, T>` (keys non-empty), `map<T>+` one that needs at least one entry.
 * A trailing `!` on `T` makes it required: a non-empty string or bytes, a non-zero number, a known
 * non-zero enum value, a present message; on a list element, every element.
 * A nested object is a `oneof` group (its name, `!` if one member must be set) and its members;
 * a member is checked only when it is the one set.
 */
export const MESSAGE_SCHEMA = {
  // envelope.proto
  Envelope: {
    requestId: 'uint64',
    replyTo: 'address',
    responseTo: 'uint64',
    sender: 'address',
    traceId: 'string',
    token: 'string',
    'body!': {
      errorReply: 'ErrorReply',
      echo: 'Echo',
      kvsRequest: 'KvsRequest',
      kvsResponse: 'KvsResponse',
      keyAddressRequest: 'KeyAddressRequest',
      keyAddressResponse: 'KeyAddressResponse',
      nodeJoin: 'NodeJoin',
      nodeDepart: 'NodeDepart',
      ringUpdate: 'RingUpdate',
      heartbeat: 'Heartbeat',
      gossip: 'Gossip',
      digestExchange: 'DigestExchange',
      subscribe: 'Subscribe',
      unsubscribe: 'Unsubscribe',
      keyUpdate: 'KeyUpdate',
      statsReport: 'StatsReport',
      ringRequest: 'RingRequest',
      registerFunction: 'RegisterFunction',
      registerFunctionResponse: 'RegisterFunctionResponse',
      registerDag: 'RegisterDag',
      callRequest: 'CallRequest',
      callResponse: 'CallResponse',
      dagCall: 'DagCall',
      schedule: 'Schedule',
      trigger: 'Trigger',
      executorStatus: 'ExecutorStatus',
      listFunctions: 'ListFunctions',
      functionList: 'FunctionList',
      deleteFunction: 'DeleteFunction',
      done: 'Done',
      listDags: 'ListDags',
      dagList: 'DagList',
      deleteDag: 'DeleteDag',
      invocationMessage: 'InvocationMessage',
      versionRequest: 'VersionRequest',
      versionReply: 'VersionReply',
      prepare: 'Prepare',
      runFinished: 'RunFinished',
      clusterStatsRequest: 'ClusterStatsRequest',
      clusterStats: 'ClusterStats',
      pinCounts: 'PinCounts',
      cancelCall: 'CancelCall',
      cancelCallResponse: 'CancelCallResponse',
      logsRequest: 'LogsRequest',
      logsReply: 'LogsReply',
      invocationsRequest: 'InvocationsRequest',
      invocationList: 'InvocationList',
      serviceAnnounce: 'ServiceAnnounce',
      servicesRequest: 'ServicesRequest',
      serviceList: 'ServiceList',
    },
  },
  // discovery.proto
  // An ingress announces its HTTP URL (the routing node checks each role's kind: kvs/routing.ts).
  ServiceAnnounce: { role: 'ServiceRole!', address: 'endpoint!', ttlMs: 'uint32', departing: 'bool' },
  ServicesRequest: {},
  ServiceList: { schedulers: 'address![]', ingresses: 'endpoint![]', monitors: 'address![]' },
  ClusterStatsRequest: {},
  ClusterStats: { nodes: 'NodeInfo[]', shards: 'StatsReport[]', executors: 'ExecutorStatus[]', replicationMax: 'uint32', replicationDefault: 'uint32' },
  PinCounts: { counts: 'PinCount[]', validMs: 'uint32' },
  PinCount: { name: 'string!', count: 'uint32' },

  // common.proto
  Error: { code: 'ErrorCode!', message: 'string', retryAfterMs: 'uint32', stack: 'string' },
  ErrorReply: { error: 'Error!' },
  KeyTuple: { key: 'string!', latticeType: 'uint32', payload: 'bytes', error: 'Error', deleted: 'bool', generation: 'Timestamp' },
  Timestamp: { wallMs: 'uint64', logical: 'uint32' },
  VectorClock: { entries: 'map<uint64>' },
  Echo: { payload: 'bytes' },

  // kvs.proto
  KvsRequest: { kind: 'RequestKind!', tuples: 'KeyTuple[]+', ack: 'AckMode', fromReplica: 'bool' },
  KvsResponse: { tuples: 'KeyTuple[]', ring: 'RingUpdate' },
  KeyAddressRequest: { keys: 'string![]+', tier: 'Tier' },
  KeyAddress: { key: 'string!', replicas: 'address![]' },
  KeyAddressResponse: { addresses: 'KeyAddress[]', error: 'Error', ringEpoch: 'uint64' },
  NodeInfo: { id: 'string!', tier: 'Tier!', address: 'address!', shardAddresses: 'address![]', virtualNodes: 'uint32', incarnation: 'uint64', departed: 'bool', metricsPort: 'uint32' },
  NodeJoin: { node: 'NodeInfo!' },
  NodeDepart: { nodeId: 'string!', graceful: 'bool' },
  RingUpdate: { epoch: 'uint64', nodes: 'NodeInfo[]', replication: 'ReplicationFactor[]', defaultGlobal: 'uint32', defaultLocal: 'uint32' },
  ReplicationFactor: { key: 'string!', tier: 'Tier!', global: 'uint32', local: 'uint32', setAt: 'Timestamp' },
  Heartbeat: { nodeId: 'string!', ringEpoch: 'uint64', sentAtMs: 'uint64' },
  Gossip: { fromNode: 'address!', tuples: 'KeyTuple[]' },
  RangeDigest: { rangeStart: 'uint64', rangeEnd: 'uint64', digest: 'bytes', keyCount: 'uint32' },
  DigestExchange: { fromNode: 'address!', ranges: 'RangeDigest[]', isReply: 'bool' },
  RingRequest: { subscriber: 'address!', leaseMs: 'uint32' },
  Subscribe: { subscriber: 'address!', keys: 'string![]+', leaseMs: 'uint32' },
  Unsubscribe: { subscriber: 'address!', keys: 'string![]' },
  KeyUpdate: { tuples: 'KeyTuple[]+' },
  KeyAccess: { key: 'string!', rate: 'double' },
  LatencyHistogram: { boundsUs: 'double[]', counts: 'uint64[]' },
  StatsReport: {
    nodeId: 'string!',
    shard: 'uint32',
    occupancyBytes: 'uint64',
    keyCount: 'uint64',
    requestsPerSecond: 'double',
    latency: 'LatencyHistogram',
    hotKeys: 'KeyAccess[]',
    sentAtMs: 'uint64',
    busyUs: 'uint64',
  },

  // faas.proto
  FunctionSpec: {
    name: 'string!',
    version: 'uint32',
    code: 'bytes!',
    memoryMb: 'uint32',
    timeoutMs: 'uint32',
    keepAliveMs: 'uint32',
    concurrency: 'uint32',
    registeredAtMs: 'uint64',
    keepAlivePolicy: 'string',
    reads: 'string[]',
    sourceMap: 'string',
  },
  RegisterFunction: { spec: 'FunctionSpec!' },
  RegisterFunctionResponse: { name: 'string', version: 'uint32', error: 'Error' },
  FunctionInfo: {
    name: 'string!',
    latest: 'uint32',
    versions: 'uint32[]',
    memoryMb: 'uint32',
    timeoutMs: 'uint32',
    keepAliveMs: 'uint32',
    codeBytes: 'uint32',
    registeredAtMs: 'uint64',
    keepAlivePolicy: 'string',
    reads: 'string[]',
  },
  ListFunctions: { name: 'string' },
  FunctionList: { functions: 'FunctionInfo[]', error: 'Error' },
  DeleteFunction: { name: 'string!', version: 'uint32' },
  Done: { error: 'Error' },
  DagEdge: { fromFunction: 'string!', toFunction: 'string!' },
  DagSpec: { name: 'string!', functions: 'string![]+', edges: 'DagEdge[]' },
  RegisterDag: { spec: 'DagSpec!' },
  ListDags: { name: 'string' },
  DagList: { dags: 'DagSpec[]', error: 'Error' },
  DeleteDag: { name: 'string!' },
  Argument: { 'kind!': { value: 'bytes!', reference: 'string!' } },
  Arguments: { args: 'Argument[]' },
  CallRequest: {
    callId: 'string!',
    function: 'string!',
    version: 'uint32',
    args: 'Argument[]',
    consistency: 'Consistency',
    async: 'bool',
    resultKey: 'string',
    timeoutMs: 'uint32',
    idempotent: 'bool',
  },
  CallResponse: { callId: 'string!', result: 'bytes', error: 'Error', lease: 'Lease' },
  Lease: { executor: 'address!', leaseMs: 'uint32', dag: 'string', functions: 'ScheduledFunction[]', timeoutMs: 'uint32' },
  DagCall: {
    callId: 'string!',
    dag: 'string!',
    args: 'map<Arguments>',
    consistency: 'Consistency',
    async: 'bool',
    resultKey: 'string',
    timeoutMs: 'uint32',
    idempotent: 'bool',
  },
  CancelCall: { callId: 'string!' },
  CancelCallResponse: { cancelled: 'bool', error: 'Error' },
  CutEntry: { key: 'string!', clock: 'VectorClock', holder: 'address' },
  ScheduledFunction: {
    name: 'string!',
    version: 'uint32!',
    executor: 'address!',
    args: 'Argument[]',
    successors: 'string![]',
    parents: 'uint32',
    parentNames: 'string![]',
  },
  Schedule: {
    runId: 'string!',
    dag: 'string',
    functions: 'ScheduledFunction[]+',
    consistency: 'Consistency',
    replyTo: 'address',
    replyRequestId: 'uint64',
    resultKey: 'string',
    timeoutMs: 'uint32!',
    scheduler: 'address',
    dispatchSeq: 'uint64',
    attempt: 'uint32',
    traceId: 'string',
    leaseMs: 'uint32',
  },
  Trigger: { runId: 'string!', sourceFunction: 'string!', targetFunction: 'string!', value: 'bytes', cut: 'CutEntry[]', error: 'Error' },
  RunFinished: { runId: 'string!' },
  InvocationMessage: { runId: 'string!', sourceFunction: 'string', targetFunction: 'string!', payload: 'bytes' },
  VersionRequest: { runId: 'string!', key: 'string!', first: 'bool' },
  VersionReply: { payload: 'bytes', error: 'Error' },
  FunctionRef: { name: 'string!', version: 'uint32!' },
  Prepare: { functions: 'FunctionRef[]+' },
  ExecutorStatus: {
    executorId: 'string!',
    address: 'address!',
    utilisation: 'double',
    warmFunctions: 'string![]',
    cachedKeys: 'string![]',
    memoryFreeMb: 'uint32',
    sentAtMs: 'uint64',
    ackedSeq: 'uint64',
    running: 'string![]',
    capacity: 'uint32',
    demand: 'double',
    functions: 'FunctionLoad[]',
    stems: 'uint32',
  },
  FunctionLoad: { name: 'string!', rate: 'double', p50Ms: 'double', p99Ms: 'double', errors: 'double' },
  // Function logs and invocations (sizes bounded again where they are served and shown: executor/function-logs.ts, client/observe.ts).
  LogsRequest: { name: 'string', sinceMs: 'uint64', callId: 'string', afterSeq: 'uint64', limit: 'uint32' },
  FunctionLogRecord: { seq: 'uint64', timeMs: 'uint64', function: 'string!', version: 'uint32', callId: 'string', level: 'string', text: 'string', fields: 'string' },
  LogsReply: { records: 'FunctionLogRecord[]', executorId: 'string', executors: 'address![]', truncated: 'bool', error: 'Error' },
  InvocationsRequest: { name: 'string', runningOnly: 'bool', limit: 'uint32' },
  InvocationInfo: { callId: 'string!', name: 'string', dag: 'bool', state: 'InvocationState!', error: 'Error', node: 'address', startedAtMs: 'uint64', durationMs: 'uint32', mode: 'string' },
  InvocationList: { invocations: 'InvocationInfo[]', executors: 'address![]', error: 'Error' },
} as const satisfies Readonly<Record<string, Readonly<Record<string, string | Readonly<Record<string, string>>>>>>;

/** A message type of the schema. */
export type MessageTypeName = keyof typeof MESSAGE_SCHEMA;

/** The enums of protocol/proto, by name. */
export const ENUMS = {
  ErrorCode: pb.ErrorCode,
  RequestKind: pb.RequestKind,
  AckMode: pb.AckMode,
  Tier: pb.Tier,
  Consistency: pb.Consistency,
  InvocationState: pb.InvocationState,
  ServiceRole: pb.ServiceRole,
} as const satisfies Readonly<Record<string, object>>;

/**
 * Cross-field rules the table cannot say; each returns a problem (prefixed with the message path)
 * or undefined.
 */
const CROSS_FIELD_RULES: Partial<Record<MessageTypeName, (message: Record<string, unknown>) => string | undefined>> = {
  // One count per bucket bound; anything else cannot be read as a histogram.
  LatencyHistogram: (message) => {
    const bounds = listOf(message['boundsUs']).length;
    const counts = listOf(message['counts']).length;
    return bounds === counts ? undefined : `counts has ${counts} entries for ${bounds} boundsUs`;
  },
};

/** The validated envelope body fields and their message types (the `oneof body` of envelope.proto). */
export const BODY_TYPES: Readonly<Record<string, MessageTypeName>> = MESSAGE_SCHEMA.Envelope['body!'];

export interface ValidateOptions {
  /** The longest repeated field or map accepted (keys in one batch, nodes in a ring...). */
  readonly maxListLength?: number;
}

/** The default bound on any repeated field or map: 100 000 entries. */
export const DEFAULT_MAX_LIST_LENGTH = 100_000;

/**
 * Checks an envelope: a decoded `pb.Envelope` or a plain `IEnvelope` object about to be encoded.
 * Throws `LfaasError` (PROTO_UNKNOWN_MESSAGE, PROTO_MISSING_FIELD, PROTO_UNKNOWN_ENUM,
 * PROTO_MALFORMED) naming the offending field.
 *
 * @example
 * ```ts
 * validateEnvelope({ kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: '' }] } });
 * // throws PROTO_MISSING_FIELD 'kvsRequest.tuples[0].key: required'
 * ```
 */
export function validateEnvelope(envelope: object, options: ValidateOptions = {}): void {
  validateRoot(envelope as Record<string, unknown>, walkOf(options, false));
}

/**
 * `validateEnvelope` for an envelope fresh from `pb.Envelope.decode` (frame.ts): skips what the
 * decoder already guarantees (JavaScript types, uint32 range, valid UTF-8). A test checks that it
 * judges every decodable frame as `validateEnvelope` does.
 */
export function validateDecodedEnvelope(envelope: object, options: ValidateOptions = {}): void {
  validateRoot(envelope as Record<string, unknown>, walkOf(options, true));
}

/**
 * Checks one message of the schema outside an envelope. `path` prefixes the field paths of errors.
 *
 * @example
 * ```ts
 * validateMessage(spec, 'FunctionSpec', 'spec'); // throws PROTO_MISSING_FIELD 'spec.name: required'
 * ```
 */
export function validateMessage(message: object, type: MessageTypeName, path: string, options: ValidateOptions = {}): void {
  validateFields(message as Record<string, unknown>, COMPILED[type], path === '' ? undefined : { parent: undefined, segment: path, mapKey: false }, walkOf(options, false));
}

/** One field of a message type as the schema describes it (oneof members included). */
export interface FieldDescription {
  readonly field: string;
  readonly shape: 'single' | 'list' | 'map';
  readonly kind: 'scalar' | 'enum' | 'message';
  /** The scalar, enum or message type name. */
  readonly type: string;
  /** The oneof group the field belongs to, if any. */
  readonly oneof?: string;
}

/** The fields of a message type, for tools that walk messages (test normalisers, printers). */
export function describeFields(type: MessageTypeName): readonly FieldDescription[] {
  const compiled = COMPILED[type];
  const describe = (check: FieldCheck, oneof?: string): FieldDescription => ({
    field: check.field,
    shape: check.shape,
    kind: check.value.kind,
    type: check.value.type,
    ...(oneof === undefined ? {} : { oneof }),
  });
  return [...compiled.fields.map((check) => describe(check)), ...compiled.oneofs.flatMap((oneof) => oneof.members.map((member) => describe(member, oneof.group)))];
}

/** No lone surrogates: the one check of lattices/strings.ts, re-exported for the frame decoder. */
export { isWellFormedString };

// ---------------------------------------------------------------------------------------------
// The schema, compiled once at load time into checks.

type Scalar = 'string' | 'bytes' | 'bool' | 'uint32' | 'uint64' | 'double' | 'address' | 'endpoint';
const SCALARS: ReadonlySet<string> = new Set<Scalar>(['string', 'bytes', 'bool', 'uint32', 'uint64', 'double', 'address', 'endpoint']);

/** What one value (a singular field, a list element or a map value) must be. */
interface ValueCheck {
  readonly kind: 'scalar' | 'enum' | 'message';
  /** The scalar, enum or message type name. */
  readonly type: string;
  readonly required: boolean;
  /** For enums: the declared numbers. */
  readonly known?: ReadonlySet<number>;
}

interface FieldCheck {
  readonly field: string;
  readonly shape: 'single' | 'list' | 'map';
  /** For lists and maps: whether at least one entry is needed. */
  readonly nonEmpty: boolean;
  readonly value: ValueCheck;
}

interface OneofCheck {
  readonly group: string;
  readonly required: boolean;
  readonly members: readonly FieldCheck[];
  /** Each member by its field name, with its place among the members. */
  readonly byField: ReadonlyMap<string, { readonly check: FieldCheck; readonly index: number }>;
}

interface CompiledMessage {
  readonly type: MessageTypeName;
  readonly fields: readonly FieldCheck[];
  /**
   * The fields that need a look in a decoded message: all but optional strings, bytes, booleans
   * and uint32s, whose type and range the decoder guarantees and whose every value is valid.
   */
  readonly decodedFields: readonly FieldCheck[];
  readonly oneofs: readonly OneofCheck[];
}

const TYPE_PATTERN = /^(?:map<(?<mapValue>\w+)(?<mapValueRequired>!?)>|(?<base>\w+)(?<required>!?)(?<list>\[\])?)(?<nonEmpty>\+?)$/;

function compileValue(type: string, required: boolean, where: string): ValueCheck {
  if (SCALARS.has(type)) return { kind: 'scalar', type, required };
  if (type in ENUMS) {
    const known = new Set(Object.values(ENUMS[type as keyof typeof ENUMS] as unknown as Record<string, number>));
    return { kind: 'enum', type, required, known };
  }
  if (type in MESSAGE_SCHEMA) return { kind: 'message', type, required };
  throw new Error(`validate.ts schema: unknown type ${type} at ${where}`);
}

function compileField(field: string, spec: string, where: string): FieldCheck {
  const groups = TYPE_PATTERN.exec(spec)?.groups;
  if (groups === undefined) throw new Error(`validate.ts schema: cannot read ${JSON.stringify(spec)} at ${where}.${field}`);
  const nonEmpty = groups['nonEmpty'] === '+';
  if (groups['mapValue'] !== undefined) {
    return { field, shape: 'map', nonEmpty, value: compileValue(groups['mapValue'], groups['mapValueRequired'] === '!', `${where}.${field}`) };
  }
  const shape = groups['list'] === undefined ? 'single' : 'list';
  if (shape === 'single' && nonEmpty) throw new Error(`validate.ts schema: '+' on a singular field at ${where}.${field}`);
  return { field, shape, nonEmpty, value: compileValue(groups['base'] ?? '', groups['required'] === '!', `${where}.${field}`) };
}

function compileMessage(type: MessageTypeName): CompiledMessage {
  const fields: FieldCheck[] = [];
  const oneofs: OneofCheck[] = [];
  for (const [name, spec] of Object.entries(MESSAGE_SCHEMA[type] as Record<string, string | Record<string, string>>)) {
    if (typeof spec === 'string') {
      fields.push(compileField(name, spec, type));
      continue;
    }
    const required = name.endsWith('!');
    const members = Object.entries(spec).map(([member, memberSpec]) => compileField(member, memberSpec, `${type}.${name}`));
    oneofs.push({ group: required ? name.slice(0, -1) : name, required, members, byField: new Map(members.map((check, index) => [check.field, { check, index }])) });
  }
  const alwaysValidWhenDecoded = (check: FieldCheck): boolean =>
    check.shape === 'single' && check.value.kind === 'scalar' && !check.value.required && ['string', 'bytes', 'bool', 'uint32'].includes(check.value.type);
  return { type, fields, decodedFields: fields.filter((check) => !alwaysValidWhenDecoded(check)), oneofs };
}

const COMPILED = Object.fromEntries(Object.keys(MESSAGE_SCHEMA).map((type) => [type, compileMessage(type as MessageTypeName)])) as Record<
  MessageTypeName,
  CompiledMessage
>;

/** Refuses a schema in which a message contains itself: the walk's depth would then be unbounded. */
function assertNoRecursion(type: MessageTypeName, visiting: readonly MessageTypeName[]): void {
  if (visiting.includes(type)) throw new Error(`validate.ts schema: ${[...visiting, type].join(' -> ')} is recursive`);
  const compiled = COMPILED[type];
  for (const check of [...compiled.fields, ...compiled.oneofs.flatMap((oneof) => oneof.members)]) {
    if (check.value.kind === 'message') assertNoRecursion(check.value.type as MessageTypeName, [...visiting, type]);
  }
}
for (const type of Object.keys(COMPILED)) assertNoRecursion(type as MessageTypeName, []);

// ---------------------------------------------------------------------------------------------
// The walk.

interface Walk {
  readonly maxListLength: number;
  /** The message came from the protobuf decoder (see `CompiledMessage.decodedFields`). */
  readonly decoded: boolean;
}

/**
 * Where a value sits, built only as deep as the walk goes and turned into text only for an error
 * (building path strings for every field would cost more than the checks themselves).
 */
interface Path {
  readonly parent: Path | undefined;
  /** A field name, a list index, or a map key. */
  readonly segment: string | number;
  readonly mapKey: boolean;
}

function field(parent: Path | undefined, name: string): Path {
  return { parent, segment: name, mapKey: false };
}

function pathText(path: Path | undefined): string {
  if (path === undefined) return '';
  const parent = pathText(path.parent);
  if (typeof path.segment === 'number') return `${parent}[${path.segment}]`;
  if (path.mapKey) return `${parent}[${JSON.stringify(path.segment)}]`;
  return parent === '' ? path.segment : `${parent}.${path.segment}`;
}

function fail(code: ErrorCode, path: Path | undefined, problem: string): never {
  throw new LfaasError(code, `${pathText(path)}: ${problem}`);
}

function walkOf(options: ValidateOptions, decoded: boolean): Walk {
  return { maxListLength: options.maxListLength ?? DEFAULT_MAX_LIST_LENGTH, decoded };
}

function validateRoot(envelope: Record<string, unknown>, walk: Walk): void {
  // No body first: it is a different error (a message this node cannot handle at all).
  const body = setMember(envelope, ENVELOPE_BODY, undefined);
  if (body === undefined) throw new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, 'envelope has no body');
  // The envelope's fields and its one oneof, without looking for the body a second time.
  for (const check of walk.decoded ? COMPILED.Envelope.decodedFields : COMPILED.Envelope.fields) validateField(envelope[check.field], check, undefined, walk);
  validateField(envelope[body.field], body, undefined, walk);
  // Header rules (see the file comment).
  const isRequest = present(envelope['requestId']);
  const hasReplyTo = present(envelope['replyTo']);
  if (isRequest && !hasReplyTo) fail(ErrorCode.PROTO_MISSING_FIELD, field(undefined, 'replyTo'), 'a request (requestId set) needs a reply address');
  if (hasReplyTo && !isRequest) fail(ErrorCode.PROTO_MISSING_FIELD, field(undefined, 'requestId'), 'a reply address needs a request id');
  if (isRequest && present(envelope['responseTo'])) {
    fail(ErrorCode.PROTO_MALFORMED, field(undefined, 'responseTo'), 'an envelope is a request (requestId) or a response (responseTo), not both');
  }
}

const ENVELOPE_BODY: OneofCheck = COMPILED.Envelope.oneofs[0] as OneofCheck;

function validateFields(message: Record<string, unknown>, compiled: CompiledMessage, path: Path | undefined, walk: Walk): void {
  for (const check of walk.decoded ? compiled.decodedFields : compiled.fields) validateField(message[check.field], check, path, walk);
  for (const oneof of compiled.oneofs) {
    const member = setMember(message, oneof, path);
    if (member === undefined) {
      if (oneof.required) fail(ErrorCode.PROTO_MISSING_FIELD, field(path, oneof.group), `one of ${oneof.members.map((m) => m.field).join(', ')} is required`);
      continue;
    }
    validateField(message[member.field], member, path, walk);
  }
  const crossField = CROSS_FIELD_RULES[compiled.type];
  const problem = crossField?.(message);
  if (problem !== undefined) throw new LfaasError(ErrorCode.PROTO_MALFORMED, `${path === undefined ? compiled.type : pathText(path)}: ${problem}`);
}

/**
 * The member of a oneof group that holds a value; two set is malformed (only a hand-built object can
 * hold two). A message holds its values as its own properties (decoded or built), so when it has
 * fewer than the group has members (the envelope's body has 50), its own keys are what is looked at.
 */
function setMember(message: Record<string, unknown>, oneof: OneofCheck, path: Path | undefined): FieldCheck | undefined {
  const keys = Object.keys(message);
  if (keys.length >= oneof.members.length) return setMemberOf(message, oneof.members, oneof, path);
  let found: FieldCheck[] | undefined;
  for (const key of keys) {
    const member = oneof.byField.get(key);
    if (member === undefined || message[key] === undefined || message[key] === null) continue;
    (found ??= []).push(member.check);
  }
  if (found === undefined) return undefined;
  if (found.length === 1) return found[0];
  // The error names them in the schema's order, as the full walk would.
  return setMemberOf(message, [...found].sort((a, b) => oneof.byField.get(a.field)!.index - oneof.byField.get(b.field)!.index), oneof, path);
}

function setMemberOf(message: Record<string, unknown>, members: readonly FieldCheck[], oneof: OneofCheck, path: Path | undefined): FieldCheck | undefined {
  let set: FieldCheck | undefined;
  for (const member of members) {
    const value = message[member.field];
    if (value === undefined || value === null) continue;
    if (set !== undefined) fail(ErrorCode.PROTO_MALFORMED, field(path, oneof.group), `${set.field} and ${member.field} both set`);
    set = member;
  }
  return set;
}

function validateField(value: unknown, check: FieldCheck, parent: Path | undefined, walk: Walk): void {
  if (check.shape === 'single') {
    validateValue(value, check.value, parent, check.field, walk);
    return;
  }
  if (value === undefined || value === null) {
    if (check.nonEmpty) fail(ErrorCode.PROTO_MISSING_FIELD, field(parent, check.field), 'needs at least one entry');
    return;
  }
  if (check.shape === 'list') {
    if (!Array.isArray(value)) fail(ErrorCode.PROTO_MALFORMED, field(parent, check.field), 'not a list');
    checkCount(value.length, check, parent, walk);
    if (value.length === 0) return;
    const listPath = field(parent, check.field);
    for (let index = 0; index < value.length; index++) validateElement(value[index], check.value, listPath, index, false, walk);
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) fail(ErrorCode.PROTO_MALFORMED, field(parent, check.field), 'not a map');
  const keys = Object.keys(value);
  checkCount(keys.length, check, parent, walk);
  if (keys.length === 0) return;
  const mapPath = field(parent, check.field);
  for (const key of keys) {
    if (key.length === 0) fail(ErrorCode.PROTO_MISSING_FIELD, { parent: mapPath, segment: key, mapKey: true }, 'a map key must not be empty');
    // Such a key would reset the prototype of a copy made with Object.assign; no name we use needs it.
    if (key === '__proto__') fail(ErrorCode.PROTO_MALFORMED, { parent: mapPath, segment: key, mapKey: true }, '"__proto__" is not accepted as a map key');
    if (!walk.decoded && !isWellFormedString(key)) fail(ErrorCode.PROTO_MALFORMED, { parent: mapPath, segment: key, mapKey: true }, 'the key is not well-formed Unicode');
    validateElement((value as Record<string, unknown>)[key], check.value, mapPath, key, true, walk);
  }
}

function checkCount(count: number, check: FieldCheck, parent: Path | undefined, walk: Walk): void {
  if (count > walk.maxListLength) fail(ErrorCode.PROTO_MALFORMED, field(parent, check.field), `${count} entries exceed the limit of ${walk.maxListLength}`);
  if (count === 0 && check.nonEmpty) fail(ErrorCode.PROTO_MISSING_FIELD, field(parent, check.field), 'needs at least one entry');
}

/** A list element or map value: a message element is always required (an absent one is malformed). */
function validateElement(value: unknown, check: ValueCheck, container: Path, position: string | number, mapKey: boolean, walk: Walk): void {
  if (check.kind === 'message') {
    const path: Path = { parent: container, segment: position, mapKey };
    if (value === undefined || value === null || typeof value !== 'object') fail(ErrorCode.PROTO_MALFORMED, path, 'missing or not a message');
    validateFields(value as Record<string, unknown>, COMPILED[check.type as MessageTypeName], path, walk);
    return;
  }
  validateValue(value, check, container, position, walk, mapKey);
}

/** A singular value at `parent` + `segment` (a field name, or a list index / map key). */
function validateValue(value: unknown, check: ValueCheck, parent: Path | undefined, segment: string | number, walk: Walk, mapKey = false): void {
  const at = (): Path => ({ parent, segment, mapKey });
  if (check.kind === 'message') {
    if (value === undefined || value === null) {
      if (check.required) fail(ErrorCode.PROTO_MISSING_FIELD, at(), 'required');
      return;
    }
    if (typeof value !== 'object') fail(ErrorCode.PROTO_MALFORMED, at(), 'not a message');
    validateFields(value as Record<string, unknown>, COMPILED[check.type as MessageTypeName], at(), walk);
    return;
  }
  if (check.kind === 'enum') {
    if (value === undefined || value === null || value === 0) {
      if (check.required) fail(ErrorCode.PROTO_MISSING_FIELD, at(), 'required');
      return;
    }
    if (typeof value !== 'number' || check.known?.has(value) !== true) fail(ErrorCode.PROTO_UNKNOWN_ENUM, at(), `${String(value)} is not a value of ${check.type}`);
    return;
  }
  if (value === undefined || value === null) {
    if (check.required) fail(ErrorCode.PROTO_MISSING_FIELD, at(), 'required');
    return;
  }
  switch (check.type as Scalar) {
    case 'uint64':
      // Decoded as plain numbers (protobuf-config.ts): above 2^53 they would be silently rounded.
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(ErrorCode.PROTO_MALFORMED, at(), `${String(value)} is not an integer in [0, 2^53)`);
      break;
    case 'double':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(ErrorCode.PROTO_MALFORMED, at(), `${String(value)} is not a finite number`);
      break;
    case 'string':
      if (walk.decoded) break;
      if (typeof value !== 'string') fail(ErrorCode.PROTO_MALFORMED, at(), 'not a string');
      // Decoding refuses invalid UTF-8; this catches a lone surrogate before it is encoded.
      if (!isWellFormedString(value)) fail(ErrorCode.PROTO_MALFORMED, at(), 'not well-formed Unicode');
      break;
    case 'address':
      if (!walk.decoded && (typeof value !== 'string' || !isWellFormedString(value))) fail(ErrorCode.PROTO_MALFORMED, at(), 'not a well-formed string');
      // Checked once here, by the rule the transport connects with: a node never tries to send to
      // an address it cannot connect to (ZeroMQ throws on some synchronously).
      if (value !== '' && !isTransportAddress(value as string)) fail(ErrorCode.PROTO_MALFORMED, at(), `${JSON.stringify(String(value).slice(0, 80))} is not a transport address`);
      break;
    case 'endpoint':
      if (!walk.decoded && (typeof value !== 'string' || !isWellFormedString(value))) fail(ErrorCode.PROTO_MALFORMED, at(), 'not a well-formed string');
      if (value !== '' && !isTransportAddress(value as string) && !isServiceUrl(value as string)) fail(ErrorCode.PROTO_MALFORMED, at(), `${JSON.stringify(String(value).slice(0, 80))} is neither a transport address nor an http(s) URL`);
      break;
    case 'bytes':
      if (!walk.decoded && !(value instanceof Uint8Array)) fail(ErrorCode.PROTO_MALFORMED, at(), 'not bytes');
      break;
    case 'bool':
      if (!walk.decoded && typeof value !== 'boolean') fail(ErrorCode.PROTO_MALFORMED, at(), 'not a boolean');
      break;
    case 'uint32':
      if (!walk.decoded && (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff)) {
        fail(ErrorCode.PROTO_MALFORMED, at(), `${String(value)} is not a uint32`);
      }
      break;
  }
  if (check.required && !present(value)) fail(ErrorCode.PROTO_MISSING_FIELD, at(), 'required');
}

/** Present in the proto3 sense: not absent and not the default value. */
function present(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (value instanceof Uint8Array) return value.byteLength > 0;
  return true;
}

function listOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}
