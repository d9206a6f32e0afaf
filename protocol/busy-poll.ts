/**
 * Polling after traffic: for a short while after a process last received or sent a message, its
 * event loop keeps polling its sockets (a chain of `setImmediate`: libuv then asks the kernel with a
 * zero timeout) instead of going to sleep in the kernel. A reply that comes back within the window
 * finds the process running: no wake-up of a sleeping process (on a virtual machine, an
 * inter-processor interrupt through the hypervisor), and caches still warm. Measured on the
 * project's 2-core VM, a loopback TCP round trip between two Node processes went from 131 to 21 us
 * (p50) and from 70 to 29 us of CPU per round trip on each side (docs/performance.md).
 *
 * The price is CPU while a process waits: at most the window after each message, so a process
 * that is idle for longer spins for the window once, then sleeps. `LFAAS_POLL_US` sets the
 * window in microseconds (default {@link DEFAULT_POLL_US}; 0 turns polling off).
 */

/** The default window: a KVS round trip between processes on one machine, when both are cold (about 0.3 ms on the 2-core VM). */
export const DEFAULT_POLL_US = 300;
/** The longest window accepted (a window is CPU spent by every process after every message). */
const POLL_US_MAX = 10_000;

/** The window `value` (LFAAS_POLL_US) asks for, in microseconds; throws on anything but a whole number in range. */
export function pollMicros(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_POLL_US;
  const micros = Number(value);
  if (!Number.isInteger(micros) || micros < 0 || micros > POLL_US_MAX) throw new Error(`LFAAS_POLL_US must be a whole number of microseconds from 0 to ${POLL_US_MAX}; got ${JSON.stringify(value)}`);
  return micros;
}

const configured = process.env['LFAAS_POLL_US'];
/** Whether LFAAS_POLL_US decides for the whole process. */
const fromEnvironment = configured !== undefined && configured !== '';
/** The window now, in milliseconds: off until the process's role asks ({@link usePolling}), or as LFAAS_POLL_US says. */
let windowMs = fromEnvironment ? pollMicros(configured) / 1000 : 0;

/**
 * Polls after traffic in this thread (a storage node's main thread and its shard threads), with
 * the default window, unless LFAAS_POLL_US decides for the whole process. Clients, executors and
 * schedulers do not: a client waiting on slower calls would spin for nothing, and an executor's
 * machine's cores belong to the functions' sandbox processes, which a polling executor slowed
 * down (measured: docs/performance.md).
 */
export function usePolling(micros: number = DEFAULT_POLL_US): void {
  if (!fromEnvironment) windowMs = micros / 1000;
}

/** The score's bound: how many gaps of one kind in a row it takes to switch polling on or off. */
const SCORE_MAX = 8;
// The real one: a test's fake timers replace the global after this module has loaded.
const immediate = setImmediate;
let pollingUntil = 0;
let polling = false;
let lastTrafficAt = 0;
/**
 * Whether polling pays here: each message received within the window of the traffic before it
 * (a wake-up polling would have saved) counts up, each later one down. A process whose messages
 * come further apart than the window (a client waiting on a slow call, a node at a trickle)
 * sleeps as before; one in a quick exchange polls.
 */
let score = 0;

function poll(): void {
  if (performance.now() < pollingUntil) immediate(poll);
  else polling = false;
}

function keepPolling(now: number): void {
  lastTrafficAt = now;
  if (score <= 0) return;
  pollingUntil = now + windowMs;
  if (!polling) {
    polling = true;
    immediate(poll);
  }
}

/** A message went out: poll for the window from now, if polling pays. */
export function afterSend(): void {
  if (windowMs === 0) return;
  keepPolling(performance.now());
}

/** A message came in: it scores the window, then as {@link afterSend}. */
export function afterReceive(): void {
  if (windowMs === 0) return;
  const now = performance.now();
  score = now - lastTrafficAt <= windowMs ? Math.min(SCORE_MAX, score + 1) : Math.max(-SCORE_MAX, score - 1);
  keepPolling(now);
}

/** The state of polling in this thread (tests): the window, the score, whether it polls now. */
export function pollingState(): { readonly windowUs: number; readonly score: number; readonly polling: boolean } {
  return { windowUs: windowMs * 1000, score, polling };
}
