export { ErrorCode, LfaasError, isErrorCode, isRetryable, isLfaasError, errorFromWire, ensureLfaasError } from '../lattices/index.js';
export { pb } from './messages.js';
export type { PbTypes } from './messages.js';
export { encodeEnvelope, decodeEnvelope, DEFAULT_MAX_FRAME_BYTES } from './frame.js';
export type { DecodeOptions } from './frame.js';
export { systemClock } from './transport.js';
export type { Transport, FrameReceiver, Clock } from './transport.js';
export { seededRandom } from './random.js';
export type { Random } from './random.js';
export type { Machine, MachineInput, Effect, Envelope, PersistWrite, MachineStore, MachineTasks } from './machine.js';
export { validateEnvelope, DEFAULT_MAX_LIST_LENGTH } from './validate.js';
export type { ValidateOptions } from './validate.js';
export { validateMessage } from './validate.js';
export type { MessageTypeName } from './validate.js';
export { MESSAGE_SCHEMA, BODY_TYPES, describeFields } from './validate.js';
export type { FieldDescription } from './validate.js';
export { peekReplyAddress, envelopeWith } from './frame.js';
export type { EnvelopeHeader } from './frame.js';
export { replyError, replyAddressOf } from './frame.js';
export type { EncodeOptions, ReplyAddress } from './frame.js';
export { errorCodeToWire, errorCodeFromWire, errorToWire, errorFromWireMessage } from './errors-wire.js';
export { encodeValue, decodeValue, DEFAULT_MAX_VALUE_BYTES } from './values.js';
export type { ValueCodecOptions } from './values.js';
export { MAX_USER_VALUE_DEPTH } from './values.js';
export { runMachine } from './machine-shell.js';
export type { MachineShell, ShellCounters, ShellOptions } from './machine-shell.js';
export { ZmqTransport, CONTEXT_SOCKETS_MAX, DESTINATION_SOCKETS_MAX, advertisedHost, clientKeyPair } from './zmq-transport.js';
export { generateKeyPair, keyText, keyFromText, isKeyText, z85 } from './keys.js';
export { seal, openSeal, SEAL_BYTES } from './frame-seal.js';
export { dialPsk, pskFor, pskSecureContext } from './tls-psk.js';
export type { KeyPair } from './keys.js';
export { Reloading } from './reloading.js';
export { Membership, ROLES, MEMBERS_FILE, readMembers, writeMembers, readKeyPair, ensureKeyPair } from './membership.js';
export type { Role, MembersDocument } from './membership.js';
export { refusalOf, systemKeyWriters } from './message-rights.js';
export type { Sender } from './message-rights.js';
export { setZapPolicy, zapAllows, zapCounters } from './zap.js';
export { RIGHTS, OWNER_PATTERN, RESERVED_OWNER, TOKEN_LENGTH_MAX, TokenVerifier, checkClaims, clientToken, createToken, unverifiedClaims, generateTokenKeys, tokenKeysFromPem, tokenKeysToPem } from './tokens.js';
export type { Grant, Right, SigningTokenKeys, TokenClaims, TokenKeys } from './tokens.js';
export { accessRefusalOf, functionKeyError, nameRefusal, ownerOfName } from './owner-access.js';
export type { NameKind } from './owner-access.js';
export type { ZmqTransportOptions, TransportCounters, RefusedFrameReceiver } from './zmq-transport.js';
export { NetTransport, NET_DESTINATIONS_MAX, NET_FRAME_BYTES_MAX, INBOUND_CONNECTIONS_MAX, HANDSHAKE_MAX_MS } from './net-transport.js';
export type { NetTransportOptions, NetConnectionCounters } from './net-transport.js';
export { bindTransport, transportKind, TRANSPORT_KINDS, TRANSPORT_ENV } from './bind-transport.js';
export type { NodeTransport, TransportKind } from './bind-transport.js';
export { DEFAULT_POLL_US, pollMicros, usePolling } from './busy-poll.js';
export { FairInbox } from './fair-inbox.js';
export type { FairInboxOptions, FairInboxCounters, PeerFrameReceiver } from './fair-inbox.js';
export { isServiceUrl, isTransportAddress, parseTcpAddress, ADDRESS_LENGTH_MAX } from './address.js';
export type { TcpAddress } from './address.js';
export { EXIT_FATAL, exitOnFatal, fatalCount, reportFatal, setFatalHandler } from './crash-guard.js';
export type { FatalHandler } from './crash-guard.js';
export { sampledLog } from './sampled-log.js';
export { FAILPOINT_MACHINE_THROWS, failpointOn } from './failpoints.js';
export type { SampledLog, SampledLogOptions } from './sampled-log.js';
export { MemoryNetwork } from './memory-network.js';
export type { MemoryNetworkOptions, NetworkCounters } from './memory-network.js';
export { Rpc } from './rpc.js';
export type { RpcOptions, RequestOptions, RequestBody, RpcCounters } from './rpc.js';
export {
  FUNCTIONS_KEY,
  DAGS_KEY,
  NAME_PATTERN,
  functionIndexKey,
  functionKey,
  dagKey,
  executionKey,
  resultKeyOf,
  functionRecordOf,
  dagRecordOf,
  resultRecordOf,
  isSystemKey,
  SYSTEM_KEY_PREFIX,
  DEFAULT_KEEP_ALIVE_MS,
  KEEP_ALIVE_POLICIES,
  READS_MAX,
  readsProblem,
  SOURCE_MAP_BYTES_MAX,
} from './faas-records.js';
export type { FunctionRecord, DagRecord, ResultRecord, KeepAlivePolicyName } from './faas-records.js';
export type { CallSignal, FunctionContext, FunctionLogger } from './function-context.js';
export { TENSOR_DIMS_MAX, TENSOR_ELEMENTS_MAX, TENSOR_ELEMENT_BYTES, TENSORS_PER_CALL_MAX, checkTensor, checkTensorRecord, float32OfTensor, isTensorType, tensorElements, tensorFromFloat32 } from './tensors.js';
export type { TensorType, TensorValue } from './tensors.js';
export { MODEL_BYTES_MAX, MODEL_CHUNK_BYTES, checkModelManifest, knownModelSha256, modelChunkKey, readChunkedModel, sha256Hex, splitModel } from './models.js';
export type { ModelManifest } from './models.js';
export { TRACER_NAME, TRACE_FIELD_MAX, SpanKind, endSpan, extractTraceContext, keyHash, kvsStartsTraces, setKvsRootSpans, spanFailed, formatTraceField, injectTraceContext, lfaasTracer, parseTraceField, setSpanAttributes, startSpanFrom, traceFieldOf } from './trace-context.js';
export type { Span, Context as TraceContext } from './trace-context.js';
