/**
 * A value read from files and read again when they change: what a running process keeps of its
 * keys folder (the member list, the token keys and revocations), so an operator's edit reaches it
 * without a restart. The files' modification times are checked at most once a second; a reading
 * that fails keeps the last good value (and says so on stderr). The first reading's error is the
 * constructor's: a process does not start on a folder it cannot read.
 */
import { existsSync, statSync } from 'node:fs';

const CHECK_MS = 1000;

export class Reloading<T> {
  private value: T;
  private stamp: string;
  private checkedMs = Date.now();

  constructor(
    private readonly paths: readonly string[],
    private readonly read: () => T,
    private readonly what: string,
  ) {
    this.stamp = this.stampNow();
    this.value = read();
  }

  /** The value as of the last check (a check, at most once a second, reads the files again if they changed). */
  get current(): T {
    const now = Date.now();
    if (now - this.checkedMs >= CHECK_MS) {
      this.checkedMs = now;
      this.reloadIfChanged();
    }
    return this.value;
  }

  private reloadIfChanged(): void {
    let stamp: string;
    try {
      stamp = this.stampNow();
    } catch {
      return;
    }
    if (stamp === this.stamp) return;
    try {
      this.value = this.read();
      this.stamp = stamp;
    } catch (error) {
      process.stderr.write(`${JSON.stringify({ level: 'warn', msg: `${this.what} not reloaded (the last one read stays): ${(error as Error).message}` })}\n`);
    }
  }

  /** The files' modification times (a missing file counts as 0). */
  private stampNow(): string {
    return this.paths.map((path) => (existsSync(path) ? statSync(path).mtimeMs : 0)).join('/');
  }
}
