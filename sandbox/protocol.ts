/**
 * The one message protocol between an executor and its runtimes (a sandbox process, or a thread
 * of the trusted `none` level). The executor sends calls, aborts, unloads and the answers to
 * `ctx` requests; the runtime sends `ctx` requests, results, errors, log records log records. Over a process boundary each message is one frame: a 4-byte big-endian length, then
 * the message in msgpack.
 *
 * Both directions are hostile to the reader. The executor reads what a process running user code
 * wrote, so {@link checkAnswer} admits only the shapes below (unknown kinds, wrong types, oversized
 * fields are a {@link ProtocolError}, and the executor ends that process); the runtime checks the
 * executor's messages with {@link checkPoolMessage} the same way, as cheap insurance.
 */
import { Packr } from 'msgpackr';
import { isWellFormedString, msgpackStringProblem } from '../lattices/index.js';

/** Who is running: the run (call) id and the function's name within it. */
export interface Invocation {
  readonly runId: string;
  readonly functionName: string;
}

/** A call as the executor sends it. */
export interface RuntimeCall {
  readonly kind: 'call';
  readonly callId: number;
  /** `name@version`: the cache key of the function's realm. */
  readonly functionId: string;
  /** Sent only when the executor does not know the runtime has the function yet. */
  readonly code?: string;
  /** msgpack of the argument array; absent for a load without a call (prewarming). */
  readonly args?: Uint8Array;
  readonly timeoutMs: number;
  readonly resultBytesMax: number;
  readonly invocation: Invocation;
}

/** The answer to a {@link HostAsk}. */
export interface HostReply {
  readonly kind: 'hostReply';
  readonly requestId: number;
  readonly payload?: Uint8Array;
  readonly error?: { readonly code: string; readonly message: string };
}

/** What the executor sends a runtime. */
export type PoolMessage =
  | RuntimeCall
  | HostReply
  /** The call's time is up: abort its signal (the executor ends the runtime if it does not settle). */
  | { readonly kind: 'abort'; readonly callId: number }
  /** Drop a function's realm (its keep-alive ran out). */
  | { readonly kind: 'unload'; readonly functionId: string };

/**
 * A function's request of its host (the executor): KVS access through the cache, and messages to
 * other invocations of its run. `payload` is a lattice encoding (merge, and a get's answer), a
 * msgpack user value (put, send, infer's feeds and outputs, and a recv's or increment's answer),
 * or absent.
 */
export interface HostAsk {
  readonly kind: 'host';
  readonly callId: number;
  readonly requestId: number;
  readonly op: HostOp;
  readonly key?: string;
  readonly target?: string;
  readonly timeoutMs?: number;
  /** An increment's amount (a safe integer; the executor checks its range). */
  readonly amount?: number;
  readonly payload?: Uint8Array;
}

/** `get` answers the lattice's encoding (`ctx.getLattice`); `read` its plain value, msgpack (`ctx.get`, `ctx.getMany`). */
export type HostOp = 'get' | 'read' | 'put' | 'merge' | 'delete' | 'increment' | 'infer' | 'send' | 'recv';
const HOST_OPS: ReadonlySet<string> = new Set<HostOp>(['get', 'read', 'put', 'merge', 'delete', 'increment', 'infer', 'send', 'recv']);

/** A failed call's error as it crosses to the executor: `code` is the catalogue's. */
export interface WireFailure {
  readonly code: string;
  readonly message: string;
  readonly stack?: string;
}

/** One line a function logged (`console.log` and friends), already turned into text. */
export interface LogRecord {
  readonly kind: 'log';
  readonly callId: number;
  readonly level: 'log' | 'info' | 'warn' | 'error' | 'debug';
  readonly text: string;
  /** `ctx.log`'s fields (`info({ fields }, 'text')`) as JSON text of an object. */
  readonly fields?: string;
}
const LOG_LEVELS: ReadonlySet<string> = new Set(['log', 'info', 'warn', 'error', 'debug']);

export type RuntimeAnswer =
  | HostAsk
  | LogRecord
  | { readonly kind: 'result'; readonly callId: number; readonly result: Uint8Array }
  | { readonly kind: 'loaded'; readonly callId: number }
  | { readonly kind: 'error'; readonly callId: number; readonly loaded: boolean; readonly error: WireFailure }
  | { readonly kind: 'ready' };

/** The largest frame either side accepts: a result or a value (8 MiB by default) and room for its envelope. */
export const FRAME_BYTES_MAX = 64 * 1024 * 1024;
/** The longest string field (keys, names, error text, a log line, function code excepted). */
export const TEXT_FIELD_MAX = 64 * 1024;
/** The longest function code accepted in a call. */
export const CODE_BYTES_MAX = 16 * 1024 * 1024;

/** A frame or a message that breaks the protocol: the peer is broken or hostile. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, copyBuffers: true, int64AsType: 'number' });

/**
 * Writes messages as frames to `channel`, the frames of one turn in one write: the channel is
 * corked until the turn's microtasks have run (the answers to a function's parallel reads go out
 * together; a write costs a system call). Both ends of the sandbox pipe use it.
 */
export function frameWriter(channel: { cork(): void; uncork(): void; write(chunk: Uint8Array): unknown }): (message: PoolMessage | RuntimeAnswer) => void {
  let corked = false;
  return (message) => {
    if (!corked) {
      corked = true;
      channel.cork();
      process.nextTick(() => {
        corked = false;
        channel.uncork();
      });
    }
    channel.write(encodeFrame(message));
  };
}

/** One message as a frame: length, then msgpack. */
export function encodeFrame(message: PoolMessage | RuntimeAnswer): Buffer {
  const body = packr.pack(message);
  if (body.byteLength > FRAME_BYTES_MAX) throw new ProtocolError(`a ${body.byteLength}-byte message exceeds the ${FRAME_BYTES_MAX}-byte frame limit`);
  const frame = Buffer.allocUnsafe(4 + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 0);
  body.copy(frame, 4);
  return frame;
}

/**
 * Cuts a byte stream into frames and decodes each (unchecked: pass the result to
 * {@link checkAnswer} or {@link checkPoolMessage}). Throws ProtocolError on a frame over the limit
 * or a body that is not one msgpack value.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    const messages: unknown[] = [];
    while (this.buffered >= 4) {
      const head = this.chunks[0]!.byteLength >= 4 ? this.chunks[0]! : this.flatten();
      const length = head.readUInt32BE(0);
      if (length > FRAME_BYTES_MAX) throw new ProtocolError(`a frame announces ${length} bytes; at most ${FRAME_BYTES_MAX}`);
      if (this.buffered < 4 + length) break;
      const all = this.chunks.length === 1 ? this.chunks[0]! : this.flatten();
      messages.push(decodeBody(all.subarray(4, 4 + length)));
      const rest = all.subarray(4 + length);
      this.chunks = rest.byteLength > 0 ? [rest] : [];
      this.buffered = rest.byteLength;
    }
    return messages;
  }

  private flatten(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }
}

function decodeBody(body: Buffer): unknown {
  let values: unknown[];
  try {
    values = packr.unpackMultiple(body) as unknown[];
  } catch (error) {
    throw new ProtocolError(`a frame is not msgpack: ${(error as Error).message}`);
  }
  if (values.length !== 1) throw new ProtocolError(`a frame holds ${values.length} values; one expected`);
  // msgpackr reads ill-formed UTF-8 as U+FFFD without a word: a lone surrogate written by the
  // other side (msgpackr encodes it so) would arrive as another string, and two keys as one.
  const problem = msgpackStringProblem(body);
  if (problem !== undefined) throw new ProtocolError(problem);
  return values[0];
}

// ---------------------------------------------------------------------------------------------
// Checks: every field of every message, by kind.

type Fields = Record<string, unknown>;

function object(value: unknown): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError('a message is not a map');
  return value as Fields;
}

function id(fields: Fields, name: string): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ProtocolError(`${name} is not an id`);
  return value;
}

function text(fields: Fields, name: string, max = TEXT_FIELD_MAX): string {
  const value = fields[name];
  if (typeof value !== 'string' || value.length > max) throw new ProtocolError(`${name} is not a string of at most ${max} characters`);
  // A lone surrogate has no UTF-8 form: msgpack would carry it as U+FFFD, and two keys would become one.
  if (!isWellFormedString(value)) throw new ProtocolError(`${name} is not well-formed Unicode`);
  return value;
}

function optionalText(fields: Fields, name: string, max = TEXT_FIELD_MAX): string | undefined {
  return fields[name] === undefined || fields[name] === null ? undefined : text(fields, name, max);
}

function optionalBytes(fields: Fields, name: string): Uint8Array | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof Uint8Array)) throw new ProtocolError(`${name} is not bytes`);
  return value;
}

function only<T extends object>(message: T, extra: Record<string, unknown>): T {
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) (message as Record<string, unknown>)[key] = value;
  return message;
}

/** A runtime's message, checked field by field; throws ProtocolError. */
export function checkAnswer(value: unknown): RuntimeAnswer {
  const fields = object(value);
  switch (fields['kind']) {
    case 'ready':
      return { kind: 'ready' };
    case 'loaded':
      return { kind: 'loaded', callId: id(fields, 'callId') };
    case 'result': {
      const result = optionalBytes(fields, 'result');
      if (result === undefined) throw new ProtocolError('a result has no bytes');
      return { kind: 'result', callId: id(fields, 'callId'), result };
    }
    case 'error': {
      const error = object(fields['error']);
      if (typeof fields['loaded'] !== 'boolean') throw new ProtocolError('loaded is not a boolean');
      const failure = only<WireFailure>({ code: text(error, 'code', 64), message: text(error, 'message') }, { stack: optionalText(error, 'stack') });
      return { kind: 'error', callId: id(fields, 'callId'), loaded: fields['loaded'], error: failure };
    }
    case 'log': {
      const level = fields['level'];
      if (typeof level !== 'string' || !LOG_LEVELS.has(level)) throw new ProtocolError('a log record has no known level');
      return only<LogRecord>({ kind: 'log', callId: id(fields, 'callId'), level: level as LogRecord['level'], text: text(fields, 'text') }, { fields: optionalText(fields, 'fields') });
    }
    case 'host': {
      const op = fields['op'];
      if (typeof op !== 'string' || !HOST_OPS.has(op)) throw new ProtocolError('a host request has no known op');
      const timeoutMs = fields['timeoutMs'];
      if (timeoutMs !== undefined && timeoutMs !== null && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)) throw new ProtocolError('timeoutMs is not a duration');
      const amount = fields['amount'];
      if (amount !== undefined && amount !== null && (typeof amount !== 'number' || !Number.isSafeInteger(amount))) throw new ProtocolError('amount is not a safe integer');
      return only<HostAsk>(
        { kind: 'host', callId: id(fields, 'callId'), requestId: id(fields, 'requestId'), op: op as HostOp },
        {
          key: optionalText(fields, 'key'),
          target: optionalText(fields, 'target'),
          timeoutMs: typeof timeoutMs === 'number' ? timeoutMs : undefined,
          amount: typeof amount === 'number' ? amount : undefined,
          payload: optionalBytes(fields, 'payload'),
        },
      );
    }
    default:
      throw new ProtocolError('a message of no known kind');
  }
}

/** An executor's message, checked field by field; throws ProtocolError. */
export function checkPoolMessage(value: unknown): PoolMessage {
  const fields = object(value);
  switch (fields['kind']) {
    case 'abort':
      return { kind: 'abort', callId: id(fields, 'callId') };
    case 'unload':
      return { kind: 'unload', functionId: text(fields, 'functionId') };
    case 'hostReply': {
      const error = fields['error'] === undefined || fields['error'] === null ? undefined : object(fields['error']);
      return only<HostReply>({ kind: 'hostReply', requestId: id(fields, 'requestId') }, { payload: optionalBytes(fields, 'payload'), error: error === undefined ? undefined : { code: text(error, 'code', 64), message: text(error, 'message') } });
    }
    case 'call': {
      const invocation = object(fields['invocation']);
      return only<RuntimeCall>(
        { kind: 'call', callId: id(fields, 'callId'), functionId: text(fields, 'functionId'), timeoutMs: id(fields, 'timeoutMs'), resultBytesMax: id(fields, 'resultBytesMax'), invocation: { runId: text(invocation, 'runId'), functionName: text(invocation, 'functionName') } },
        { code: optionalText(fields, 'code', CODE_BYTES_MAX), args: optionalBytes(fields, 'args') },
      );
    }
    default:
      throw new ProtocolError('a message of no known kind');
  }
}
