/**
 * What every long-running `lfaas` role process shares: a line-oriented readiness report for the
 * parent (`ready <json>`), stopping on SIGTERM/SIGINT, not outliving `lfaas up` (a closed stdin
 * means the parent died), the crash guard (a bug ends the process with EXIT_FATAL for its
 * supervisor to restart), and sampled error logs; every log line a structured record of the
 * role's log (cli/log.ts).
 */
import { exitOnFatal, isLfaasError, sampledLog } from '../protocol/index.js';
import { profileOnSignal } from './cpu-profile.js';
import { initRoleLog, roleLog } from './log.js';

/**
 * Starts the role's structured log and installs the process's crash guard
 * (protocol/crash-guard.ts): a bug anywhere (a machine that throws, an uncaught exception, an
 * unhandled rejection) is logged as one `fatal` record (its msg the readable line: the role, the
 * context, `exiting with 70`, and the stack) and ends the process with EXIT_FATAL; `lfaas up`
 * restarts it.
 */
export function guardProcess(name: string): void {
  profileOnSignal(name);
  initRoleLog(name);
  exitOnFatal(name, (line) => roleLog().fatal(line));
}

export function announceReady(details: Record<string, unknown>): void {
  process.stdout.write(`ready ${JSON.stringify(details)}\n`);
}

/** What runs after a role's own stop, before it exits (cli/tracing.ts: the last spans' flush). */
const lastStops: Array<() => Promise<void>> = [];

/** Adds `last` to what a role stopped by `stopOnSignals` runs after its own stop, before it exits. */
export function atLastStop(last: () => Promise<void>): void {
  lastStops.push(last);
}

/** Runs `stop` once on SIGTERM, SIGINT or the parent's death, then the {@link atLastStop} functions, then exits. */
export function stopOnSignals(stop: () => Promise<void>, name: string): void {
  let stopping = false;
  const run = (code: number): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(code), 5000);
    force.unref();
    stop()
      .catch((error: unknown) => roleLog().error({ err: error instanceof Error ? { type: error.name, message: error.message } : String(error) }, `${name}: stop failed`))
      .then(() => Promise.allSettled(lastStops.map((last) => last())))
      .finally(() => process.exit(code));
  };
  process.on('SIGTERM', () => run(0));
  process.on('SIGINT', () => run(0));
  if (process.env['LFAAS_CHILD'] === '1') {
    process.stdin.on('end', () => run(0));
    process.stdin.resume();
  }
}

/**
 * A logger for the expected errors of role processes (rejected frames, refused sends): sampled,
 * one `warn` record per peer and error code every 10 s (a refused key: every minute) with `code`,
 * `peer`, and `skipped` (those like it not logged since), so a flood of bad frames costs the node
 * a few records, not one synchronous write each. The message is cut at 500 characters.
 */
export function logError(name: string): (error: Error, peer?: string) => void {
  // The event being logged: sampledLog builds its line (and appends the skipped count) only when it writes.
  let event: { code: string; peer: string | undefined; message: string } = { code: '', peer: undefined, message: '' };
  const write = (line: string): void => {
    const skipped = /\(and (\d+) more like it in the last \d+ s\)$/.exec(line);
    roleLog().warn({ code: event.code, ...(event.peer === undefined ? {} : { peer: event.peer }), skipped: skipped === null ? 0 : Number(skipped[1]) }, event.message);
  };
  const log = sampledLog({ write });
  const unauthorised = sampledLog({ write, intervalMs: 60_000 });
  return (error, peer) => {
    const code = isLfaasError(error) ? error.code : error.name;
    (code === 'UNAUTHORISED' ? unauthorised : log)(`${peer ?? '-'} ${code}`, () => {
      event = { code, peer, message: `${name}: ${error.message.slice(0, 500)}` };
      return event.message;
    });
  };
}
