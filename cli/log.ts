/**
 * The structured log of a role process: pino JSON lines on stderr, one record per event, with the
 * fields every record carries (`role`, `node`: the role's address or id once bound, `pid`), a
 * `traceId` when the event concerns a request that carries a W3C traceparent, and the level from
 * `LFAAS_LOG_LEVEL` (trace, debug, info, warn, error, fatal, silent; default info). `lfaas up`
 * sets it to `warn` for its children unless it is set, so its terminal shows problems only.
 *
 * No keys, tokens or user values: call sites log codes, peers and sizes; as a second wall the
 * logger censors the fields that would hold them (`token`, `key`, `keys`, `value`, `args`,
 * `authorization`, `secretKey`, at the top level and one level down) with `[redacted]`.
 *
 * Writes are synchronous (stderr is a pipe or a file): role processes log rarely (expected errors
 * are sampled, cli/process.ts), and a fatal record must be out before the process exits.
 *
 * @example
 * ```ts
 * initRoleLog('scheduler');
 * setLogNode(transport.address);
 * roleLog().warn({ code: 'PROTO_MALFORMED', peer }, 'frame rejected');
 * ```
 */
import pino from 'pino';
import type { Logger } from 'pino';

/** Field names censored wherever they appear at the top level or one level down. */
const SECRET_FIELDS = ['token', 'key', 'keys', 'value', 'args', 'authorization', 'secretKey', 'password'] as const;
export const REDACT_PATHS: readonly string[] = [...SECRET_FIELDS, ...SECRET_FIELDS.map((field) => `*.${field}`)];
const LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

let current: Logger | undefined;

/** The level of role logs: `LFAAS_LOG_LEVEL` when it names one, else `info`. */
export function roleLogLevel(env: NodeJS.ProcessEnv = process.env): string {
  const asked = env['LFAAS_LOG_LEVEL']?.trim().toLowerCase();
  return asked !== undefined && LEVELS.has(asked) ? asked : 'info';
}

/**
 * Makes a role logger writing to `destination` (default: stderr, synchronously). Tests pass a
 * stream to read the records back.
 */
export function makeRoleLogger(role: string, destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true }), level = roleLogLevel()): Logger {
  return pino(
    {
      level,
      base: { role, pid: process.pid },
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      // pino's numeric levels (30 info, 40 warn, 50 error, 60 fatal), as the functions' records on
      // an executor's stderr have them: one format for every line a role writes.
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** Starts the process's role log (once; a second call changes nothing). */
export function initRoleLog(role: string): Logger {
  current ??= makeRoleLogger(role);
  return current;
}

/** Adds the `node` field (the role's address or id) to every record from now on. */
export function setLogNode(node: string): void {
  current = roleLog().child({ node });
}

/** The process's role log (a `lfaas` role without one started: `role: "lfaas"`). */
export function roleLog(): Logger {
  current ??= makeRoleLogger('lfaas');
  return current;
}

/**
 * The 32-hex trace id of a W3C traceparent (`00-<trace id>-<span id>-<flags>`), or undefined when
 * `trace` is not one (absent, malformed, or the all-zero id).
 */
export function traceIdOf(trace: string | undefined | null): string | undefined {
  if (trace === undefined || trace === null) return undefined;
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(trace.trim());
  if (match === null || /^0+$/.test(match[1]!)) return undefined;
  return match[1];
}
