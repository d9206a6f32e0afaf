/**
 * Per-peer fairness for a node's incoming frames: each peer (a connection, as the ZeroMQ transport
 * tells them apart) gets a bounded share of the node's queue and of its CPU, so a flood from one
 * peer slows only that peer.
 *
 * - Queue: a peer may have at most `peerFramesMax` frames and `peerBytesMax` bytes waiting; beyond,
 *   its new frames are refused (`offer` returns false, the caller answers or drops them). The
 *   whole inbox is bounded too (`totalFramesMax`, `totalBytesMax`): when it is full, `full` is true
 *   and the transport stops reading its socket until `whenRoom()`, so ZeroMQ's own per-connection
 *   buffers and high-water marks push back on the senders.
 * - CPU: deficit round robin over the peers with waiting frames, charged with the measured time
 *   of handling each frame (not a frame count: one 60 000-key GET costs what hundreds of small
 *   ones do). A peer gets `quantumMs` of credit per round; it is served while its credit is
 *   positive and then goes to the back of the round. A peer whose frames are expensive runs into
 *   debt and waits for its turn while the others are served; a peer alone is served at once.
 * - Latency: at most `turnBudgetMs` of frames are handled per turn of the event loop; the rest
 *   waits for the next turn (`defer`), so timers, replies and other sockets are never starved.
 *
 * With one peer and nothing queued, a frame is handled at once, inline: the fast path costs two
 * clock reads.
 */

/** Called for each frame, in the order the fairness decides; `peer` is the connection it came on. */
export type PeerFrameReceiver = (frame: Uint8Array, peer: string) => void;

export interface FairInboxOptions {
  /** Frames one peer may have waiting. */
  readonly peerFramesMax?: number;
  /** Bytes one peer may have waiting. */
  readonly peerBytesMax?: number;
  /** Frames waiting in all. */
  readonly totalFramesMax?: number;
  /** Bytes waiting in all. */
  readonly totalBytesMax?: number;
  /** Credit a peer gets per round, in milliseconds of handling. */
  readonly quantumMs?: number;
  /** Handling time per turn of the event loop before the rest is deferred. */
  readonly turnBudgetMs?: number;
  /** Peers remembered (their debt) while idle, at most. */
  readonly idlePeersMax?: number;
  /** The clock handling time is measured with (milliseconds). */
  readonly now?: () => number;
  /** Runs `callback` on a later turn of the event loop. */
  readonly defer?: (callback: () => void) => void;
}

/** What an inbox counts; exposed for metrics. */
export interface FairInboxCounters {
  /** Frames handed to the receiver. */
  handled: number;
  /** Frames refused because their peer's share of the queue was full. */
  refused: number;
  /** Times the handling was cut at the turn budget and deferred. */
  deferred: number;
}

/** A first-in first-out queue over an array with a moving head, compacted as the head advances. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The first item; only call with `length > 0`. */
  peek(): T {
    return this.items[this.head]!;
  }

  /** Removes and returns the first item; only call with `length > 0`. */
  shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 256 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

class PeerQueue {
  readonly frames = new Fifo<Uint8Array>();
  bytes = 0;
  /** Credit in milliseconds; negative is debt. */
  deficitMs = 0;
  active = false;
  idleSinceMs = 0;

  constructor(readonly id: string) {}

  take(): Uint8Array {
    const frame = this.frames.shift();
    this.bytes -= frame.byteLength;
    return frame;
  }
}

/** The smallest charge per frame, so that even free frames use up credit. */
const FRAME_COST_MIN_MS = 0.001;

/** See the file comment. */
export class FairInbox {
  readonly counters: FairInboxCounters = { handled: 0, refused: 0, deferred: 0 };
  private readonly peers = new Map<string, PeerQueue>();
  /** The round: peers with waiting frames, served from its head. */
  private readonly round = new Fifo<PeerQueue>();
  private totalFrames = 0;
  private totalBytes = 0;
  private draining = false;
  private drainScheduled = false;
  /** Handling time spent in this turn of the event loop. */
  private spentMs = 0;
  private lastHandledMs = Number.NEGATIVE_INFINITY;
  private roomWaiters: (() => void)[] = [];
  private readonly peerFramesMax: number;
  private readonly peerBytesMax: number;
  private readonly totalFramesMax: number;
  private readonly totalBytesMax: number;
  private readonly quantumMs: number;
  private readonly turnBudgetMs: number;
  private readonly idlePeersMax: number;
  private readonly now: () => number;
  private readonly defer: (callback: () => void) => void;

  constructor(
    private readonly receiver: PeerFrameReceiver,
    options: FairInboxOptions = {},
  ) {
    this.peerFramesMax = options.peerFramesMax ?? 4096;
    this.peerBytesMax = options.peerBytesMax ?? 32 * 1024 * 1024;
    this.totalFramesMax = options.totalFramesMax ?? 65_536;
    this.totalBytesMax = options.totalBytesMax ?? 256 * 1024 * 1024;
    this.quantumMs = options.quantumMs ?? 0.5;
    this.turnBudgetMs = options.turnBudgetMs ?? 5;
    this.idlePeersMax = options.idlePeersMax ?? 4096;
    this.now = options.now ?? (() => performance.now());
    this.defer = options.defer ?? ((callback) => void setImmediate(callback));
  }

  /** Frames waiting. */
  get waiting(): number {
    return this.totalFrames;
  }

  /** Peers with frames waiting. */
  get activePeers(): number {
    return this.round.length;
  }

  /** Whether the whole inbox is at its bound: stop reading until `whenRoom()`. */
  get full(): boolean {
    return this.totalFrames >= this.totalFramesMax || this.totalBytes >= this.totalBytesMax;
  }

  /** Resolves once the inbox is below half its bounds. */
  whenRoom(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * Queues `frame` from `peer` and handles what fairness allows now. Returns false, queuing
   * nothing, when the peer's share of the queue is full.
   */
  offer(peer: string, frame: Uint8Array): boolean {
    let queue = this.peers.get(peer);
    if (queue === undefined) {
      if (this.peers.size >= this.idlePeersMax) this.forgetIdlePeers();
      queue = new PeerQueue(peer);
      this.peers.set(peer, queue);
    }
    if (queue.frames.length >= this.peerFramesMax || (queue.frames.length > 0 && queue.bytes + frame.byteLength > this.peerBytesMax)) {
      this.counters.refused++;
      return false;
    }
    queue.frames.push(frame);
    queue.bytes += frame.byteLength;
    this.totalFrames++;
    this.totalBytes += frame.byteLength;
    if (!queue.active) {
      queue.active = true;
      // Debt is forgiven at the pace it would have been served while the peer was away.
      if (queue.deficitMs < 0) queue.deficitMs = Math.min(0, queue.deficitMs + (this.now() - queue.idleSinceMs));
      this.round.push(queue);
    }
    if (!this.drainScheduled) this.drain();
    return true;
  }

  /**
   * Handles waiting frames, fairly, until none wait or the turn's budget is spent (then the rest
   * is deferred to a later turn). `deferredTurn`: this call starts a turn of its own, which handles
   * at least one frame whatever the budget, so that the inbox always progresses.
   */
  private drain(deferredTurn = false): void {
    if (this.draining) return;
    this.draining = true;
    // Idle for longer than a turn's budget since the last frame: the event loop had its turn.
    if (deferredTurn || this.now() - this.lastHandledMs > this.turnBudgetMs) this.spentMs = 0;
    let handled = 0;
    try {
      while (this.round.length > 0) {
        if (this.spentMs >= this.turnBudgetMs && (handled > 0 || !deferredTurn)) {
          this.counters.deferred++;
          this.scheduleDrain();
          return;
        }
        const peer = this.round.peek();
        if (peer.deficitMs <= 0) {
          // Out of credit: a quantum more, and to the back of the round. Bounded: each pass adds
          // credit, so some peer is served after at most (largest debt / quantum) passes.
          peer.deficitMs += this.quantumMs;
          if (this.round.length > 1) this.round.push(this.round.shift());
          continue;
        }
        const frame = peer.take();
        this.totalFrames--;
        this.totalBytes -= frame.byteLength;
        const before = this.now();
        try {
          this.receiver(frame, peer.id);
        } finally {
          const after = this.now();
          const cost = Math.max(FRAME_COST_MIN_MS, after - before);
          handled++;
          this.counters.handled++;
          this.spentMs += cost;
          this.lastHandledMs = after;
          peer.deficitMs -= cost;
          if (peer.frames.length === 0) {
            peer.active = false;
            peer.idleSinceMs = after;
            // Unused credit is not saved up; debt is kept (forgiven with time, see `offer`).
            peer.deficitMs = Math.min(0, peer.deficitMs);
            this.round.shift();
          }
        }
      }
    } finally {
      this.draining = false;
      this.wakeRoomWaiters();
    }
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    this.defer(() => {
      this.drainScheduled = false;
      this.drain(true);
    });
  }

  private wakeRoomWaiters(): void {
    if (this.roomWaiters.length === 0) return;
    if (this.totalFrames * 2 > this.totalFramesMax || this.totalBytes * 2 > this.totalBytesMax) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Drops idle peers without debt (and, if still too many, the longest idle ones). */
  private forgetIdlePeers(): void {
    for (const [id, queue] of this.peers) if (!queue.active && queue.deficitMs >= 0) this.peers.delete(id);
    if (this.peers.size < this.idlePeersMax) return;
    const idle = [...this.peers.values()].filter((queue) => !queue.active).sort((a, b) => a.idleSinceMs - b.idleSinceMs);
    for (const queue of idle.slice(0, Math.ceil(idle.length / 2))) this.peers.delete(queue.id);
  }
}
