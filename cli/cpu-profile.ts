/**
 * CPU profiles of role processes, for finding where a request's time goes. With
 * `LFAAS_CPU_PROFILE_DIR=<folder>` in its environment, a role (and each shard worker thread of a
 * storage node) profiles on demand: SIGUSR2 starts V8's sampling profiler in every thread, the
 * next SIGUSR2 stops it and writes `<folder>/<label>-<pid>-<thread>.cpuprofile` (Chrome
 * DevTools' format, read by `bench -- profile`), so a profile covers the measured window only.
 * A profile still running when its thread ends is written then. Node refuses `--cpu-prof` in
 * NODE_OPTIONS, hence the roles profile themselves, through their own thread's inspector. Without
 * the variable nothing is installed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

/** The environment variable naming the folder profiles go to. */
export const CPU_PROFILE_DIR_ENV = 'LFAAS_CPU_PROFILE_DIR';

/** The folder profiles go to, or undefined when profiling is off. */
export function cpuProfileFolder(): string | undefined {
  const folder = process.env[CPU_PROFILE_DIR_ENV];
  return folder === undefined || folder === '' ? undefined : folder;
}

/**
 * This thread's profiler switch (undefined when profiling is off): each call starts a profile or
 * stops the running one and writes it. A profile running at the thread's exit is written then.
 */
export function cpuProfileSwitch(label: string): (() => void) | undefined {
  const folder = cpuProfileFolder();
  if (folder === undefined) return undefined;
  mkdirSync(folder, { recursive: true });
  let session: Session | undefined;
  let count = 0;
  const toggle = (): void => {
    if (session === undefined) {
      session = new Session();
      session.connect();
      session.post('Profiler.enable');
      session.post('Profiler.start');
      return;
    }
    const running = session;
    session = undefined;
    // A session connected to its own thread answers synchronously: this works inside 'exit' too.
    running.post('Profiler.stop', (error, result) => {
      if (error === null) writeFileSync(join(folder, `${label}-${process.pid}-${threadId}-${count++}.cpuprofile`), JSON.stringify(result.profile));
      running.disconnect();
    });
  };
  process.on('exit', () => {
    if (session !== undefined) toggle();
  });
  return toggle;
}

const signalListeners: Array<() => void> = [];

/** A role's main thread: SIGUSR2 toggles its profiler and tells the {@link alsoOnProfileSignal} listeners. */
export function profileOnSignal(label: string): void {
  const toggle = cpuProfileSwitch(label);
  if (toggle === undefined) return;
  process.on('SIGUSR2', () => {
    toggle();
    for (const listener of signalListeners) listener();
  });
}

/** Adds who hears of SIGUSR2 besides the main thread (a storage node: its shard worker threads). */
export function alsoOnProfileSignal(listener: () => void): void {
  if (cpuProfileFolder() !== undefined) signalListeners.push(listener);
}
