/**
 * What a runtime's function asks of its executor (`ctx`'s KVS access, counters, models and
 * messages), answered through the call's {@link FunctionHost}; and what it logs, written to the
 * executor's log. The runtime pool hands every `host` request and `log` record of a running call
 * here.
 *
 * A request is answered exactly once, with a payload or a typed error: a host method may throw at
 * once (a key the function may not reach) or reject later; both become the error reply. The
 * payloads were checked by the sandbox protocol (sandbox/protocol.ts) for shape only; their
 * contents are decoded here with the codecs that refuse what they do not accept.
 */
import type pino from 'pino';
import { ErrorCode, LfaasError, decodeLattice, ensureLfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { decodeValue, encodeValue } from '../protocol/index.js';
import type { HostAsk, HostReply, LogRecord } from '../sandbox/index.js';
import { encodingOf, plainEncodingOf } from './cache.js';

/**
 * Where a function's `ctx` goes: the executor's cache in the call's consistency mode, and the
 * mailboxes of the call's run. `put` gets a plain (msgpack) value: the host picks its lattice. A
 * method may throw at once (a key the function may not reach): the pool answers that request with
 * the error, as it does a rejection.
 */
export interface FunctionHost {
  get(key: string): Promise<AnyLattice | undefined>;
  put(key: string, value: unknown): Promise<void>;
  merge(key: string, value: AnyLattice): Promise<void>;
  delete(key: string): Promise<void>;
  increment?(key: string, amount: number): Promise<number>;
  infer?(modelKey: string, feeds: unknown): Promise<Record<string, unknown>>;
  send?(target: string, payload: Uint8Array): Promise<void>;
  recv?(timeoutMs: number): Promise<Uint8Array | undefined>;
}

/** Answers `ask` through `host` (none: the call has no KVS) with one `hostReply`, sent by `send`. */
export function answerHostAsk(host: FunctionHost | undefined, ask: HostAsk, send: (reply: HostReply) => void): void {
  const reply = (payload?: Uint8Array): void => send({ kind: 'hostReply', requestId: ask.requestId, ...(payload === undefined ? {} : { payload }) });
  const fail = (error: unknown): void => {
    const typed = ensureLfaasError(error);
    send({ kind: 'hostReply', requestId: ask.requestId, error: { code: typed.code, message: typed.message } });
  };
  if (host === undefined) {
    fail(new LfaasError(ErrorCode.KVS_NO_SERVERS, 'this call has no KVS'));
    return;
  }
  try {
    const key = ask.key ?? '';
    switch (ask.op) {
      case 'get':
        host.get(key).then((value) => reply(value === undefined ? undefined : encodingOf(value)), fail);
        return;
      case 'read':
        host.get(key).then((value) => reply(value === undefined ? undefined : plainEncodingOf(value)), fail);
        return;
      case 'put':
        host.put(key, decodeValue(ask.payload ?? new Uint8Array())).then(() => reply(), fail);
        return;
      case 'merge':
        host.merge(key, decodeLattice(ask.payload ?? new Uint8Array())).then(() => reply(), fail);
        return;
      case 'delete':
        host.delete(key).then(() => reply(), fail);
        return;
      case 'increment':
        if (host.increment === undefined) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'this executor has no counters');
        host.increment(key, ask.amount ?? 1).then((value) => reply(encodeValue(value)), fail);
        return;
      case 'infer':
        if (host.infer === undefined) throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'this executor runs no models');
        host.infer(key, decodeValue(ask.payload ?? new Uint8Array())).then((outputs) => reply(encodeValue(outputs)), fail);
        return;
      case 'send':
        if (host.send === undefined) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'this call is not part of a run with other invocations');
        host.send(ask.target ?? '', ask.payload ?? new Uint8Array()).then(() => reply(), fail);
        return;
      case 'recv':
        if (host.recv === undefined) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'this call has no mailbox');
        host.recv(ask.timeoutMs ?? 0).then((payload) => reply(payload), fail);
        return;
    }
  } catch (error) {
    fail(error);
  }
}

/** Fields of a function's log record that would pass for the executor's own (dropped). */
const RESERVED_LOG_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'callId', 'fn', 'v']);

/** One log record of a function into `log` (a child logger with the call id and function). */
export function writeFunctionLog(log: pino.Logger, record: LogRecord): void {
  const level = record.level === 'log' ? 'info' : record.level;
  let fields: Record<string, unknown> | undefined;
  if (record.fields !== undefined) {
    try {
      const parsed: unknown = JSON.parse(record.fields);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        fields = {};
        for (const [key, value] of Object.entries(parsed)) if (!RESERVED_LOG_FIELDS.has(key)) fields[key] = value;
      }
    } catch {
      fields = { fieldsText: record.fields };
    }
  }
  if (fields === undefined) log[level](record.text);
  else log[level](fields, record.text);
}
