/**
 * `lfaas logs [function] [--follow] [--since 5m] [--call <id>] [--json]`: what functions logged
 * (console.*, ctx.log), read from every live executor through the SDK (`faas.logs()`,
 * client/observe.ts), in time order: one line per record with its time, executor, function,
 * call id, level and text. `--follow` keeps printing new records until Ctrl-C. `--json`: one JSON
 * document (an array of records); with `--follow`, one JSON object per line.
 *
 * A function's text is untrusted: printed on a terminal, its control characters and escape
 * sequences are shown escaped (`terminalSafe`), one record per line. An owner reads its own
 * namespace (the default), the admin everything.
 */
import { LatticeFaas, terminalSafe } from '../client/index.js';
import type { FunctionLogEntry } from '../client/index.js';
import { UsageError, reportFailure } from './exit-codes.js';
import { exitWatchdog, given } from './faas-commands.js';
import type { FaasAddresses } from './faas-commands.js';

export interface LogsCommandOptions extends FaasAddresses {
  readonly follow?: boolean;
  /** `30s`, `5m`, `2h`, `1d`, or a date (ISO 8601). */
  readonly since?: string;
  readonly call?: string;
  readonly json?: boolean;
  /** Records per executor, at most. */
  readonly limit?: number;
}

const UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from `nowMs` (`90s`, `5m`, `2h`, `1d`) or a date; the time it names (ms since the epoch). */
export function parseSince(text: string, nowMs: number): number {
  const duration = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (duration !== null) return nowMs - Number(duration[1]) * UNITS_MS[duration[2]!]!;
  const date = Date.parse(text);
  if (Number.isFinite(date) && /\d{4}-\d{2}-\d{2}/.test(text)) return date;
  throw new UsageError(`--since ${JSON.stringify(text.slice(0, 40))}: a duration (30s, 5m, 2h, 1d) or a date (2026-01-31T12:00:00Z)`);
}

/** An address as a terminal shows it: `host:port` (the scheme and the key's fingerprint left out; --json keeps them). */
export function shortAddress(address: string): string {
  const hash = address.indexOf('#');
  return (hash < 0 ? address : address.slice(0, hash)).replace(/^[a-z]+:\/\//, '');
}

/** One record as a terminal line (every part made printable). */
export function logLine(record: FunctionLogEntry): string {
  const fields = record.fields === undefined ? '' : ` ${typeof record.fields === 'string' ? record.fields : JSON.stringify(record.fields)}`;
  const parts = [new Date(record.timeMs).toISOString(), shortAddress(record.executor), `${record.function}@${record.version}`, record.callId, record.level.padEnd(5), `${record.text}${fields}`];
  return parts.map(terminalSafe).join('  ');
}

/** A warning on stderr for an executor that did not answer, once per executor and error code (a follower asks again and again). */
export function warnOnce(): (executor: string, error: { readonly code: string; readonly message: string }) => void {
  const told = new Set<string>();
  return (executor, error) => {
    const key = `${executor}\0${error.code}`;
    if (told.has(key) || told.size > 1000) return;
    told.add(key);
    process.stderr.write(`lfaas: warning: executor ${terminalSafe(shortAddress(executor))} left out: ${error.code}: ${terminalSafe(error.message.slice(0, 300))}\n`);
  };
}

export async function logsCommand(name: string | undefined, options: LogsCommandOptions): Promise<void> {
  const json = options.json === true;
  let faas: LatticeFaas | undefined;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  try {
    const sinceMs = options.since === undefined ? undefined : parseSince(options.since, Date.now());
    faas = await LatticeFaas.connect(given(options));
    const records = faas.logs({
      ...(name === undefined ? {} : { function: name }),
      ...(sinceMs === undefined ? {} : { sinceMs }),
      ...(options.call === undefined ? {} : { callId: options.call }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      follow: options.follow === true,
      signal: stop.signal,
      onUnreachable: warnOnce(),
    });
    if (options.follow === true) {
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      // A reader that went away (`lfaas logs --follow | head`) ends the follow, not the process with EPIPE.
      process.stdout.once('error', onSignal);
      for await (const record of records) process.stdout.write(`${json ? JSON.stringify(record) : logLine(record)}\n`);
    } else if (json) {
      const all: FunctionLogEntry[] = [];
      for await (const record of records) all.push(record);
      process.stdout.write(`${JSON.stringify(all)}\n`);
    } else {
      for await (const record of records) process.stdout.write(`${logLine(record)}\n`);
    }
  } catch (error) {
    reportFailure(error, json);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onSignal);
    await faas?.close();
    exitWatchdog();
  }
}
