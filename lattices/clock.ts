/**
 * A hybrid logical clock (Kulkarni et al.): timestamps `(wallMs, logical)` that follow physical
 * time when it moves forward, never go backwards when it does not, and order causally related
 * events (a receive is later than its send). LWW values take their timestamps from here.
 */
import { ErrorCode, LfaasError } from './errors.js';

/** A hybrid clock timestamp. */
export interface Timestamp {
  readonly wallMs: number;
  readonly logical: number;
}

function isTimestampPart(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Orders timestamps: by wall time, then by logical counter. */
export function compareTimestamps(a: Timestamp, b: Timestamp): number {
  return a.wallMs - b.wallMs || a.logical - b.logical;
}

/**
 * The clock of one writer.
 *
 * @example
 * ```ts
 * const clock = new HybridClock('node-1', () => Date.now());
 * const t1 = clock.tick();
 * clock.observe(remoteTimestamp);
 * const t2 = clock.tick(); // > t1 and > remoteTimestamp
 * ```
 */
export class HybridClock {
  private last: Timestamp = { wallMs: 0, logical: 0 };

  /**
   * @param writerId the id LWW values written with this clock carry
   * @param physicalNowMs the physical clock (injected: the system clock, or a simulated one)
   * @param maxDriftMs how far ahead of local physical time a remote timestamp is believed; beyond
   *   it, `observe` clamps to `physical + maxDriftMs` so one node's fast clock cannot drag every
   *   clock (and shadow every later write) arbitrarily far into the future. The price: a receive
   *   from a node more than `maxDriftMs` ahead is stamped *before* its send (causality traded for
   *   bounded skew); within the bound every receive is later than its send.
   */
  constructor(
    readonly writerId: string,
    private readonly physicalNowMs: () => number,
    readonly maxDriftMs = 60_000,
  ) {
    if (writerId.length === 0) throw new LfaasError(ErrorCode.INTERNAL, 'a clock needs a writer id');
    if (!isTimestampPart(maxDriftMs)) throw new LfaasError(ErrorCode.INTERNAL, 'maxDriftMs must be a non-negative integer');
  }

  /** A timestamp for a local event: larger than every timestamp this clock has given or seen. */
  tick(): Timestamp {
    const physical = this.physicalMs();
    this.last = physical > this.last.wallMs ? { wallMs: physical, logical: 0 } : { wallMs: this.last.wallMs, logical: this.last.logical + 1 };
    return this.last;
  }

  /** Folds in a timestamp from another node (a receive event); returns the receive timestamp. */
  observe(remote: Timestamp): Timestamp {
    if (!isTimestampPart(remote.wallMs) || !isTimestampPart(remote.logical)) {
      throw new LfaasError(ErrorCode.LATTICE_DECODE, 'a remote timestamp must be two non-negative safe integers');
    }
    const physical = this.physicalMs();
    const bounded: Timestamp = remote.wallMs > physical + this.maxDriftMs ? { wallMs: physical + this.maxDriftMs, logical: 0 } : remote;
    const wallMs = Math.max(physical, this.last.wallMs, bounded.wallMs);
    let logical: number;
    if (wallMs === this.last.wallMs && wallMs === bounded.wallMs) logical = Math.max(this.last.logical, bounded.logical) + 1;
    else if (wallMs === this.last.wallMs) logical = this.last.logical + 1;
    else if (wallMs === bounded.wallMs) logical = bounded.logical + 1;
    else logical = 0;
    this.last = { wallMs, logical };
    return this.last;
  }

  /** Physical time in whole ms; a broken reading (NaN, infinite, negative) counts as no progress. */
  private physicalMs(): number {
    const reading = Math.floor(this.physicalNowMs());
    return Number.isSafeInteger(reading) && reading >= 0 ? reading : this.last.wallMs;
  }

  /** The last timestamp given or seen. */
  peek(): Timestamp {
    return this.last;
  }
}
