/**
 * The function side of the executor: what runs next to user code. The executor talks to it
 * through one message protocol (./protocol.ts) and starts it from one of two entries: a sandbox
 * process (./process-main.ts, Hardened JavaScript) or a trusted thread (./thread-main.ts, `vm`).
 */
export { FrameReader, ProtocolError, checkAnswer, checkPoolMessage, encodeFrame, frameWriter, FRAME_BYTES_MAX } from './protocol.js';
export type { HostAsk, HostOp, HostReply, Invocation, LogRecord, PoolMessage, RuntimeAnswer, RuntimeCall, WireFailure } from './protocol.js';
export { TIMERS_MAX, LOG_RECORDS_MAX, LOG_BYTES_MAX } from './globals.js';
/** The function side itself, for a runtime that hosts it in the executor's own process (the test harness, testing/). */
export { FunctionRuntime } from './runtime.js';
export type { Realm, UserFunction } from './runtime.js';
