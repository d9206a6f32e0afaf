/**
 * Sampled logging: at most one line per key (a peer and a reason) per interval, however many
 * events there are. A flood of bad frames then costs a few lines a second instead of one
 * synchronous write each (stderr is synchronous when it is a pipe or a file). The lines skipped
 * are counted and said on the key's next line, so nothing is hidden, only summed.
 */

export interface SampledLogOptions {
  /** Where lines go. */
  readonly write: (line: string) => void;
  /** One line per key per this many milliseconds. */
  readonly intervalMs?: number;
  /** Keys remembered at most; beyond, events share the key `*`. */
  readonly keysMax?: number;
  readonly now?: () => number;
}

/** Logs `line()` (built only when written) unless `key` was logged less than an interval ago. */
export type SampledLog = (key: string, line: () => string) => void;

/**
 * @example
 * ```ts
 * const log = sampledLog({ write: (line) => process.stderr.write(`${line}\n`) });
 * log(`${peer} PROTO_MALFORMED`, () => `bad frame from ${peer}: ${error.message}`);
 * ```
 */
export function sampledLog(options: SampledLogOptions): SampledLog {
  const intervalMs = options.intervalMs ?? 10_000;
  const keysMax = options.keysMax ?? 1000;
  const now = options.now ?? (() => performance.now());
  const keys = new Map<string, { loggedAtMs: number; skipped: number }>();
  return (key, line) => {
    const at = now();
    let entry = keys.get(key);
    if (entry === undefined) {
      if (keys.size >= keysMax) {
        for (const [name, old] of keys) if (at - old.loggedAtMs >= intervalMs && old.skipped === 0) keys.delete(name);
      }
      if (keys.size >= keysMax) key = '*';
      entry = keys.get(key);
    }
    if (entry !== undefined && at - entry.loggedAtMs < intervalMs) {
      entry.skipped++;
      return;
    }
    const skipped = entry?.skipped ?? 0;
    keys.set(key, { loggedAtMs: at, skipped: 0 });
    options.write(skipped === 0 ? line() : `${line()} (and ${skipped} more like it in the last ${Math.round(intervalMs / 1000)} s)`);
  };
}
