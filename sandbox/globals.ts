/**
 * What a function's realm holds besides the language: `console` (captured into the call's log),
 * timers that belong to the call that set them, `crypto.getRandomValues`, text codecs and `URL`.
 * Each is made here, in the runtime's own code, and hardened before it is handed in; none is a
 * host object that could lead back to the runtime (the timers return numbers, not Node's
 * `Timeout` objects; the logger is a plain object of plain functions).
 *
 * Bounds, per call (beyond each, the call fails with EXEC_LIMIT even if the function catches the
 * error it was thrown): {@link TIMERS_MAX} pending timers, {@link LOG_RECORDS_MAX} log records,
 * {@link LOG_BYTES_MAX} characters of log text.
 */
import { getRandomValues } from 'node:crypto';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { LogRecord } from './protocol.js';

export const TIMERS_MAX = 1000;
export const LOG_RECORDS_MAX = 1000;
export const LOG_BYTES_MAX = 1024 * 1024;
/** The longest log record; longer ones are cut with a note. */
export const LOG_RECORD_CHARS_MAX = 16 * 1024;
/** `getRandomValues` fills at most this many bytes at once (the Web Crypto limit). */
const RANDOM_BYTES_MAX = 65_536;

/** What the globals need of the call running now. */
export interface CallScope {
  readonly callId: number;
  /** Whether the call is still running (its timers fire, its logs are kept). */
  readonly active: boolean;
  /** Records a limit the call broke: the call fails with it whatever the function does next. */
  breach(error: LfaasError): LfaasError;
  /** A timer callback of the call threw: the call fails with it (as the function's own error) once it settles. */
  uncaught(thrown: unknown): void;
  log(level: LogRecord['level'], text: string, fields?: string): void;
  readonly timers: Map<number, NodeJS.Timeout>;
}

/** Gives each function's realm its globals; `current()` is the call running now (one at a time). */
export function makeGlobals(current: () => CallScope | undefined): Record<string, unknown> {
  let nextTimer = 1;
  const owner = (): CallScope => {
    const scope = current();
    if (scope === undefined || !scope.active) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'no call is running');
    return scope;
  };
  const schedule = (repeat: boolean) =>
    function (callback: unknown, delayMs?: unknown, ...args: unknown[]): number {
      const scope = owner();
      if (typeof callback !== 'function') throw new TypeError('a timer callback is a function (strings are not evaluated)');
      if (scope.timers.size >= TIMERS_MAX) throw scope.breach(new LfaasError(ErrorCode.EXEC_LIMIT, `more than ${TIMERS_MAX} timers pending`));
      const id = nextTimer++;
      const delay = Math.min(Math.max(Number(delayMs) || 0, 0), 2 ** 31 - 1);
      const fire = (): void => {
        if (!repeat) scope.timers.delete(id);
        if (!scope.active) return;
        try {
          (callback as (...values: unknown[]) => void)(...args);
        } catch (thrown) {
          scope.uncaught(thrown);
        }
      };
      scope.timers.set(id, repeat ? setInterval(fire, delay) : setTimeout(fire, delay));
      return id;
    };
  const clear = function (id: unknown): void {
    const scope = current();
    if (scope === undefined || typeof id !== 'number') return;
    const timer = scope.timers.get(id);
    if (timer === undefined) return;
    clearTimeout(timer);
    scope.timers.delete(id);
  };
  const logger = (level: LogRecord['level']) =>
    function (...values: unknown[]): void {
      owner().log(level, values.map(show).join(' '));
    };
  const console = { log: logger('log'), info: logger('info'), warn: logger('warn'), error: logger('error'), debug: logger('debug') };
  const crypto = {
    getRandomValues<T>(array: T): T {
      if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) throw new TypeError('getRandomValues takes an integer typed array');
      if (array.byteLength > RANDOM_BYTES_MAX) throw new RangeError(`getRandomValues fills at most ${RANDOM_BYTES_MAX} bytes`);
      getRandomValues(array as unknown as Uint8Array);
      return array;
    },
    randomUUID(): string {
      const bytes = new Uint8Array(16);
      getRandomValues(bytes);
      bytes[6] = (bytes[6]! & 0x0f) | 0x40;
      bytes[8] = (bytes[8]! & 0x3f) | 0x80;
      const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
  };
  return {
    console,
    setTimeout: schedule(false),
    setInterval: schedule(true),
    clearTimeout: clear,
    clearInterval: clear,
    queueMicrotask: function (callback: unknown): void {
      if (typeof callback !== 'function') throw new TypeError('queueMicrotask takes a function');
      const scope = owner();
      Promise.resolve().then(() => {
        if (!scope.active) return;
        try {
          (callback as () => void)();
        } catch (thrown) {
          scope.uncaught(thrown);
        }
      });
    },
    crypto,
    TextEncoder,
    TextDecoder,
    URL,
    URLSearchParams,
    structuredClone: function (value: unknown): unknown {
      return structuredClone(value);
    },
  };
}

/** The text of a logged value: strings as they are, the rest as JSON where it can be, never throwing. */
export function show(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    const json = JSON.stringify(value, (_key, inner: unknown) => (typeof inner === 'bigint' ? `${inner}n` : inner));
    return json ?? String(value);
  } catch {
    try {
      return String(value);
    } catch {
      return '[a value that cannot be shown]';
    }
  }
}
