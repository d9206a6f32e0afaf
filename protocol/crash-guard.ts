/**
 * The one place a process decides what an unexpected exception means.
 *
 * Expected failures are typed errors handled for the one request they concern (a bad frame is
 * answered with PROTO_*, a failed send rejects that send). Anything else that reaches the shell or
 * the transport (a machine that throws from `handle`, a frame receiver that throws) is a bug, and
 * after a bug the state of the machine may be half-updated: carrying on would serve from corrupted
 * state. So such errors go to `reportFatal`, never to a silent catch, and the process-wide handler
 * decides. A role process installs `exitOnFatal` (cli/process.ts): the error is logged with its
 * context and counted, and the process exits with EXIT_FATAL so that its supervisor (`lfaas up`,
 * Kubernetes) restarts it on the same data. Without an installed handler (library use, tests) the
 * error is thrown again on a fresh stack, where Node's own uncaught-exception handling sees it.
 */

/** The exit code of a process ended by `exitOnFatal` (EX_SOFTWARE of sysexits.h). */
export const EXIT_FATAL = 70;

/** Decides what a bug means; `where` says what was running (a machine and input, a socket). */
export type FatalHandler = (error: unknown, where: string) => void;

const rethrow: FatalHandler = (error) => {
  queueMicrotask(() => {
    throw error;
  });
};

let handler: FatalHandler = rethrow;
let reported = 0;

/**
 * Hands a bug to the process's handler. Never throws.
 *
 * @example
 * ```ts
 * try { effects = machine.handle(input, now) } catch (error) { reportFatal(error, `machine ${machine.id}`); return; }
 * ```
 */
export function reportFatal(error: unknown, where: string): void {
  reported++;
  try {
    handler(error, where);
  } catch (handlerError) {
    rethrow(handlerError, 'the fatal-error handler');
  }
}

/** How many bugs were reported in this process (for metrics and tests). */
export function fatalCount(): number {
  return reported;
}

/**
 * Sets the process's handler; returns a function that puts the previous one back (tests).
 *
 * @example
 * ```ts
 * const restore = setFatalHandler((error, where) => seen.push(where));
 * ```
 */
export function setFatalHandler(next: FatalHandler): () => void {
  const previous = handler;
  handler = next;
  return () => {
    handler = previous;
  };
}

/**
 * The handler of a role process: one line to `log` with the role, the context and the stack, then
 * `process.exit(EXIT_FATAL)`. Uncaught exceptions and unhandled rejections go the same way.
 */
export function exitOnFatal(role: string, log: (line: string) => void): void {
  let exiting = false;
  const fatal: FatalHandler = (error, where) => {
    if (exiting) return;
    exiting = true;
    const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
    try {
      log(`${role}: FATAL in ${where}; exiting with ${EXIT_FATAL} for the supervisor to restart: ${stack}`);
    } finally {
      process.exit(EXIT_FATAL);
    }
  };
  setFatalHandler(fatal);
  process.on('uncaughtException', (error) => {
    reported++;
    fatal(error, 'an uncaught exception');
  });
  process.on('unhandledRejection', (reason) => {
    reported++;
    fatal(reason, 'an unhandled rejection');
  });
}
