/**
 * Validation of decoded envelopes. protobuf decoding accepts far too much (any unknown enum number,
 * missing fields read as defaults, garbage that happens to parse), so every frame is checked
 * against a declarative table of rules before a node sees it: required fields present and
 * non-empty, enum fields holding a known value, 64-bit integers within 2^53, repeated fields
 * bounded. A failure names the path of the offending field.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { pb } from './messages.js';

/** Rules for one message type. Field names are the generated (camelCase) ones. */
interface Rule {
  /** Fields that must be present and non-empty (strings, bytes, non-zero numbers, messages). */
  readonly required?: readonly string[];
  /** Enum fields and their enum objects. Zero (UNSPECIFIED) is allowed unless also required. */
  readonly enums?: Readonly<Record<string, object>>;
  /** Nested message fields and their rule names. */
  readonly messages?: Readonly<Record<string, string>>;
  /** Repeated message fields and their element rule names. */
  readonly lists?: Readonly<Record<string, string>>;
  /** Repeated fields that must hold at least one element. */
  readonly nonEmpty?: readonly string[];
  /** Map fields whose values are messages, with the value rule name. */
  readonly maps?: Readonly<Record<string, string>>;
}

const RULES: Readonly<Record<string, Rule>> = {
  Error: { enums: { code: pb.ErrorCode }, required: ['code'] },
  ErrorReply: { messages: { error: 'Error' }, required: ['error'] },
  Echo: {},
  KeyTuple: { required: ['key'], messages: { error: 'Error' } },
  KvsRequest: { required: ['kind'], enums: { kind: pb.RequestKind, ack: pb.AckMode }, lists: { tuples: 'KeyTuple' }, nonEmpty: ['tuples'] },
  KvsResponse: { lists: { tuples: 'KeyTuple' }, messages: { ring: 'RingUpdate' } },
  KeyAddressRequest: { enums: { tier: pb.Tier }, nonEmpty: ['keys'] },
  KeyAddress: { required: ['key'] },
  KeyAddressResponse: { lists: { addresses: 'KeyAddress' }, messages: { error: 'Error' } },
  NodeInfo: { required: ['id', 'address'], enums: { tier: pb.Tier } },
  NodeJoin: { required: ['node'], messages: { node: 'NodeInfo' } },
  NodeDepart: { required: ['nodeId'] },
  RingUpdate: { lists: { nodes: 'NodeInfo', replication: 'ReplicationFactor' } },
  ReplicationFactor: { required: ['key'], enums: { tier: pb.Tier } },
  Heartbeat: { required: ['nodeId'] },
  Gossip: { required: ['fromNode'], lists: { tuples: 'KeyTuple' } },
  RangeDigest: {},
  DigestExchange: { required: ['fromNode'], lists: { ranges: 'RangeDigest' } },
  Subscribe: { required: ['subscriber'], nonEmpty: ['keys'] },
  Unsubscribe: { required: ['subscriber'] },
  KeyUpdate: { lists: { tuples: 'KeyTuple' } },
  KeyAccess: { required: ['key'] },
  LatencyHistogram: {},
  StatsReport: { required: ['nodeId'], messages: { latency: 'LatencyHistogram' }, lists: { hotKeys: 'KeyAccess' } },
  FunctionSpec: { required: ['name'] },
  RegisterFunction: { required: ['spec'], messages: { spec: 'FunctionSpec' } },
  RegisterFunctionResponse: { messages: { error: 'Error' } },
  DagEdge: { required: ['fromFunction', 'toFunction'] },
  DagSpec: { required: ['name'], nonEmpty: ['functions'], lists: { edges: 'DagEdge' } },
  RegisterDag: { required: ['spec'], messages: { spec: 'DagSpec' } },
  Argument: {},
  Arguments: { lists: { args: 'Argument' } },
  CallRequest: { required: ['callId', 'function'], enums: { consistency: pb.Consistency }, lists: { args: 'Argument' } },
  CallResponse: { required: ['callId'], messages: { error: 'Error' } },
  DagCall: { required: ['callId', 'dag'], enums: { consistency: pb.Consistency }, maps: { args: 'Arguments' } },
  VectorClock: {},
  CutEntry: { required: ['key'], messages: { clock: 'VectorClock' } },
  DagSchedule: { required: ['runId', 'dag'], enums: { consistency: pb.Consistency }, maps: { args: 'Arguments' } },
  DagTrigger: { required: ['runId', 'targetFunction'], lists: { cut: 'CutEntry' }, messages: { error: 'Error' } },
  ExecutorStatus: { required: ['executorId', 'address'] },
};

/** The envelope's body fields and their message types (the `oneof body` of envelope.proto). */
export const BODY_TYPES: Readonly<Record<string, string>> = {
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
  registerFunction: 'RegisterFunction',
  registerFunctionResponse: 'RegisterFunctionResponse',
  registerDag: 'RegisterDag',
  callRequest: 'CallRequest',
  callResponse: 'CallResponse',
  dagCall: 'DagCall',
  dagSchedule: 'DagSchedule',
  dagTrigger: 'DagTrigger',
  executorStatus: 'ExecutorStatus',
};

export interface ValidateOptions {
  /** The longest repeated field accepted (keys in one batch, nodes in a ring...). */
  readonly maxListLength?: number;
}

/** The default bound on any repeated field. */
export const DEFAULT_MAX_LIST_LENGTH = 100_000;

/** Checks a decoded envelope; throws LfaasError (PROTO_MISSING_FIELD, PROTO_UNKNOWN_ENUM, PROTO_MALFORMED, PROTO_UNKNOWN_MESSAGE). */
export function validateEnvelope(envelope: { readonly body?: string | undefined } & object, options: ValidateOptions = {}): void {
  const maxListLength = options.maxListLength ?? DEFAULT_MAX_LIST_LENGTH;
  const record = envelope as Record<string, unknown>;
  for (const field of ['requestId', 'responseTo']) checkSafeInteger(record[field], field);
  const requestId = Number(record['requestId'] ?? 0);
  if (requestId !== 0 && !nonEmptyString(record['replyTo'])) {
    throw new LfaasError(ErrorCode.PROTO_MISSING_FIELD, 'replyTo: a request (requestId set) needs a reply address');
  }
  const body = envelope.body;
  if (body === undefined) throw new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, 'envelope has no body');
  const typeName = BODY_TYPES[body];
  if (typeName === undefined) throw new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `unknown body ${body}`);
  validateMessage(record[body], typeName, body, maxListLength, 0);
}

const MAX_DEPTH = 16;

function validateMessage(value: unknown, typeName: string, path: string, maxListLength: number, depth: number): void {
  if (depth > MAX_DEPTH) throw new LfaasError(ErrorCode.PROTO_MALFORMED, `${path}: nested too deep`);
  const rule = RULES[typeName];
  if (rule === undefined) throw new LfaasError(ErrorCode.INTERNAL, `no validation rule for ${typeName}`);
  if (typeof value !== 'object' || value === null) throw new LfaasError(ErrorCode.PROTO_MISSING_FIELD, `${path}: missing`);
  const message = value as Record<string, unknown>;
  for (const [field, fieldValue] of Object.entries(message)) {
    if (typeof fieldValue === 'number') checkSafeInteger(fieldValue, `${path}.${field}`, true);
    if (Array.isArray(fieldValue) && fieldValue.length > maxListLength) {
      throw new LfaasError(ErrorCode.PROTO_MALFORMED, `${path}.${field}: ${fieldValue.length} entries exceed ${maxListLength}`);
    }
  }
  for (const field of rule.required ?? []) {
    if (!present(message[field])) throw new LfaasError(ErrorCode.PROTO_MISSING_FIELD, `${path}.${field}: required`);
  }
  for (const [field, enumObject] of Object.entries(rule.enums ?? {})) {
    const enumValue = message[field];
    if (enumValue === undefined || enumValue === 0) continue;
    if (typeof enumValue !== 'number' || !(enumObject as Record<number, unknown>)[enumValue]) {
      throw new LfaasError(ErrorCode.PROTO_UNKNOWN_ENUM, `${path}.${field}: unknown value ${String(enumValue)}`);
    }
  }
  for (const field of rule.nonEmpty ?? []) {
    const list = message[field];
    if (!Array.isArray(list) || list.length === 0) throw new LfaasError(ErrorCode.PROTO_MISSING_FIELD, `${path}.${field}: needs at least one entry`);
  }
  for (const [field, nestedType] of Object.entries(rule.messages ?? {})) {
    const nested = message[field];
    if (nested !== undefined && nested !== null) validateMessage(nested, nestedType, `${path}.${field}`, maxListLength, depth + 1);
  }
  for (const [field, elementType] of Object.entries(rule.lists ?? {})) {
    const list = message[field];
    if (!Array.isArray(list)) continue;
    list.forEach((element, index) => validateMessage(element, elementType, `${path}.${field}[${index}]`, maxListLength, depth + 1));
  }
  for (const [field, valueType] of Object.entries(rule.maps ?? {})) {
    const map = message[field];
    if (typeof map !== 'object' || map === null) continue;
    const entries = Object.entries(map);
    if (entries.length > maxListLength) throw new LfaasError(ErrorCode.PROTO_MALFORMED, `${path}.${field}: ${entries.length} entries exceed ${maxListLength}`);
    for (const [key, entry] of entries) validateMessage(entry, valueType, `${path}.${field}[${JSON.stringify(key)}]`, maxListLength, depth + 1);
  }
}

function present(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string') return value.length > 0;
  if (typeof value === 'number') return value !== 0;
  if (value instanceof Uint8Array) return value.byteLength > 0;
  return true;
}

function nonEmptyString(value: unknown): boolean {
  return typeof value === 'string' && value.length > 0;
}

function checkSafeInteger(value: unknown, path: string, floatsAllowed = false): void {
  if (value === undefined || typeof value !== 'number') return;
  if (floatsAllowed && !Number.isInteger(value)) return;
  if (!Number.isSafeInteger(value)) throw new LfaasError(ErrorCode.PROTO_MALFORMED, `${path}: ${value} is not an integer below 2^53`);
}
