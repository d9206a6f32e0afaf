/**
 * What every long-running `lfaas` role process shares: a line-oriented readiness report for the
 * parent (`ready <json>`), stopping on SIGTERM/SIGINT, and not outliving `lfaas up` (a closed
 * stdin means the parent died).
 */
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

/** A stderr logger for role processes (errors only; the hot path never logs). */
export function logError(name: string): (error: Error) => void {
  return (error) => process.stderr.write(`${name}: ${error.message}\n`);
}
