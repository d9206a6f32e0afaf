/**
 * Free loopback TCP ports: single ones found by letting the kernel pick and releasing them at
 * once, and whole ranges (for `lfaas up --base-port` in tests run in parallel): a random base
 * below the kernel's ephemeral range whose every port binds now, reserved among this machine's
 * processes with a lock file until `release()`.
 */
import { closeSync, openSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<import('node:net').Server>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Ranges are picked from here: below Linux's ephemeral ports (32768+), above the usual services. */
const RANGE_FIRST = 20_000;
const RANGE_LAST = 32_000;
const RANGE_TRIES_MAX = 50;
/** A lock older than this is left over from a run that died: taken over. */
const LOCK_STALE_MS = 30 * 60_000;

/** A reserved range of ports: `base` - 20 up to `base` + `span`. */
export interface PortRange {
  readonly base: number;
  release(): void;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A base port B for `lfaas up --base-port` reserved at once (no bind check: `up` checks its
 * ports itself and fails at once, naming the one taken), with a lock file in the temporary
 * folder so that test files running at the same time pick different ranges.
 */
export function reservePortRange(span = 400): PortRange {
  const slots = Math.floor((RANGE_LAST - RANGE_FIRST) / (span + 20));
  for (let attempt = 0; attempt < RANGE_TRIES_MAX; attempt++) {
    const base = RANGE_FIRST + 20 + Math.floor(Math.random() * slots) * (span + 20);
    if (takeLock(base)) return { base, release: () => rmSync(lockOf(base), { force: true }) };
  }
  throw new Error(`no unreserved range of ${span + 20} ports between ${RANGE_FIRST} and ${RANGE_LAST} after ${RANGE_TRIES_MAX} tries`);
}

const lockOf = (base: number): string => join(tmpdir(), `lfaas-port-range-${base}.lock`);

/** Creates the range's lock file; false when another process holds it (a stale one is taken over). */
function takeLock(base: number): boolean {
  const lock = lockOf(base);
  try {
    closeSync(openSync(lock, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(lock).mtimeMs < LOCK_STALE_MS) return false;
      rmSync(lock, { force: true });
      closeSync(openSync(lock, 'wx'));
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * A base port B such that B-20 .. B+span-1 all bind now (`lfaas up`'s layout: HTTP at B-20,
 * storage from B+300), reserved with a lock file in the temporary folder so that test files
 * running at the same time pick different ranges. Call `release()` when done.
 */
export async function freePortRange(span = 400): Promise<PortRange> {
  const slots = Math.floor((RANGE_LAST - RANGE_FIRST) / (span + 20));
  for (let attempt = 0; attempt < RANGE_TRIES_MAX; attempt++) {
    const base = RANGE_FIRST + 20 + Math.floor(Math.random() * slots) * (span + 20);
    if (!takeLock(base)) continue;
    const release = (): void => rmSync(lockOf(base), { force: true });
    const ports = Array.from({ length: span + 20 }, (_, i) => base - 20 + i);
    const free = await Promise.all(ports.map(bindable));
    if (free.every(Boolean)) return { base, release };
    release();
  }
  throw new Error(`no free range of ${span + 20} ports between ${RANGE_FIRST} and ${RANGE_LAST} after ${RANGE_TRIES_MAX} tries`);
}
