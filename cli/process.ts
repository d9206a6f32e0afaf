/**
 * What every long-running `lfaas` role process shares: a line-oriented readiness report for the
 * parent (`ready <json>`), stopping on SIGTERM/SIGINT, not outliving `lfaas up` (a closed stdin
 * means the parent died), the crash guard (a bug ends the process with EXIT_FATAL for its
 * supervisor to restart), and sampled error logs.
 */
import { exitOnFatal, isLfaasError, sampledLog } from '../protocol/index.js';

/**
 * Installs the process's crash guard (protocol/crash-guard.ts): a bug anywhere (a machine that
 * throws, an uncaught exception, an unhandled rejection) is logged with its context and stack and
 * ends the process with EXIT_FATAL; `lfaas up` restarts it.
 */
export function guardProcess(name: string): void {
  exitOnFatal(name, (line) => process.stderr.write(`${line}\n`));
}
export function announceReady(details: Record<string, unknown>): void {
  process.stdout.write(`ready ${JSON.stringify(details)}\n`);
}

/** Runs `stop` once on SIGTERM, SIGINT or the parent's death, then exits. */
export function stopOnSignals(stop: () => Promise<void>, name: string): void {
  let stopping = false;
  const run = (code: number): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(code), 5000);
    force.unref();
    stop()
      .catch((error: unknown) => process.stderr.write(`${name}: stop failed: ${String(error)}\n`))
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
 * A stderr logger for the expected errors of role processes (rejected frames, refused sends):
 * sampled, one line per peer and error code every 10 s with the count of those skipped, so a flood
 * of bad frames costs the node a few lines, not one synchronous write each.
 */
export function logError(name: string): (error: Error, peer?: string) => void {
  const write = (line: string): void => void process.stderr.write(`${line}\n`);
  const log = sampledLog({ write });
  // A refused key is logged once per peer per minute.
  const unauthorised = sampledLog({ write, intervalMs: 60_000 });
  return (error, peer) => {
    const code = isLfaasError(error) ? error.code : error.name;
    (code === 'UNAUTHORISED' ? unauthorised : log)(`${peer ?? '-'} ${code}`, () => `${name}: ${peer === undefined ? '' : `[${peer}] `}${error.message.slice(0, 500)}`);
  };
}
