/**
 * Mailboxes of the invocations running on one executor (`ctx.send` / `ctx.recv`). An invocation
 * is addressed by (run id, function name). A message sent before its receiver started waits for
 * it; one sent after the receiver finished is refused with GONE, so the sender knows it was not
 * delivered. Each mailbox holds at most `messagesMax` messages (TRANSPORT_BUSY beyond), and the
 * table at most `mailboxesMax` invocations; finished invocations are remembered (bounded) so a
 * late message is refused rather than buffered forever.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';

interface Mailbox {
  readonly messages: Uint8Array[];
  readonly waiters: ((payload: Uint8Array | undefined) => void)[];
  running: boolean;
}

export interface MailboxOptions {
  readonly messagesMax?: number;
  readonly mailboxesMax?: number;
  readonly finishedMax?: number;
}

const id = (runId: string, functionName: string): string => `${runId}\u0000${functionName}`;

export class Mailboxes {
  private readonly boxes = new Map<string, Mailbox>();
  /** Invocations that finished, oldest first (a bounded memory of them). */
  private readonly finished = new Set<string>();
  /** Runs whose mailboxes were dropped (their deadline passed), oldest first, bounded as `finished`. */
  private readonly endedRuns = new Set<string>();
  private readonly messagesMax: number;
  private readonly mailboxesMax: number;
  private readonly finishedMax: number;

  constructor(options: MailboxOptions = {}) {
    this.messagesMax = options.messagesMax ?? 64;
    this.mailboxesMax = options.mailboxesMax ?? 10_000;
    this.finishedMax = options.finishedMax ?? 10_000;
  }

  /** Puts a message in an invocation's mailbox (waiting for it to start if it has not yet). */
  deliver(runId: string, functionName: string, payload: Uint8Array): void {
    const key = id(runId, functionName);
    if (this.finished.has(key)) throw new LfaasError(ErrorCode.GONE, `${functionName} of run ${runId} has finished`);
    // Not buffered for a run that is over: nobody would open or close that mailbox again.
    if (this.endedRuns.has(runId)) throw new LfaasError(ErrorCode.GONE, `run ${runId} has ended here`);
    const box = this.box(key);
    const waiter = box.waiters.shift();
    if (waiter !== undefined) {
      waiter(payload);
      return;
    }
    if (box.messages.length >= this.messagesMax) throw new LfaasError(ErrorCode.TRANSPORT_BUSY, `the mailbox of ${functionName} holds ${box.messages.length} messages`);
    box.messages.push(payload);
  }

  /** The invocation starts: its mailbox exists from now on. */
  open(runId: string, functionName: string): void {
    // A run dispatched again (an async call's next attempt keeps its run id) starts afresh.
    this.finished.delete(id(runId, functionName));
    this.endedRuns.delete(runId);
    this.box(id(runId, functionName)).running = true;
  }

  /** The next message, or undefined after `timeoutMs`. */
  receive(runId: string, functionName: string, timeoutMs: number): Promise<Uint8Array | undefined> {
    const box = this.box(id(runId, functionName));
    const next = box.messages.shift();
    if (next !== undefined) return Promise.resolve(next);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const index = box.waiters.indexOf(waiter);
        if (index >= 0) box.waiters.splice(index, 1);
        resolve(undefined);
      }, timeoutMs);
      const waiter = (payload: Uint8Array | undefined): void => {
        clearTimeout(timer);
        resolve(payload);
      };
      box.waiters.push(waiter);
    });
  }

  /** The invocation is over: its unread messages are dropped and later ones refused. */
  close(runId: string, functionName: string): void {
    const key = id(runId, functionName);
    const box = this.boxes.get(key);
    this.boxes.delete(key);
    for (const waiter of box?.waiters ?? []) waiter(undefined);
    this.finished.add(key);
    if (this.finished.size > this.finishedMax) this.finished.delete(this.finished.values().next().value!);
  }

  /** Drops every mailbox of a run (its deadline passed). */
  dropRun(runId: string): void {
    const prefix = `${runId}\u0000`;
    for (const key of [...this.boxes.keys()]) if (key.startsWith(prefix)) this.boxes.delete(key);
    this.endedRuns.add(runId);
    if (this.endedRuns.size > this.finishedMax) this.endedRuns.delete(this.endedRuns.values().next().value!);
  }

  get size(): number {
    return this.boxes.size;
  }

  private box(key: string): Mailbox {
    let box = this.boxes.get(key);
    if (box === undefined) {
      if (this.boxes.size >= this.mailboxesMax) throw new LfaasError(ErrorCode.TRANSPORT_BUSY, `${this.boxes.size} mailboxes are open`);
      box = { messages: [], waiters: [], running: false };
      this.boxes.set(key, box);
    }
    return box;
  }
}
