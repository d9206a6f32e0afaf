/**
 * Simulated time: a queue of timers ordered by due time, then by the order they were set, so a
 * run is a pure function of its seed. Nothing happens until the simulation advances the clock.
 */
import type { Clock } from './transport.js';

interface Entry {
  readonly dueMs: number;
  readonly sequence: number;
  readonly callback: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private nowMs = 0;
  private sequence = 0;
  /** A binary min-heap on (dueMs, sequence). */
  private readonly heap: Entry[] = [];

  now(): number {
    return this.nowMs;
  }

  setTimer(delayMs: number, callback: () => void): () => void {
    const entry: Entry = { dueMs: this.nowMs + Math.max(0, delayMs), sequence: this.sequence++, callback, cancelled: false };
    this.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  /** Number of timers still queued (cancelled ones included until they surface). */
  get pending(): number {
    return this.heap.length;
  }

  /** The due time of the next live timer, or undefined when none is queued. */
  nextDueMs(): number | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.dueMs;
  }

  /** Runs the next live timer (advancing time to it); false when none is queued. */
  step(): boolean {
    while (this.heap.length > 0) {
      const entry = this.pop()!;
      if (entry.cancelled) continue;
      this.nowMs = Math.max(this.nowMs, entry.dueMs);
      entry.callback();
      return true;
    }
    return false;
  }

  /** Runs timers due up to `untilMs`, at most `maxSteps` of them; then sets the time to `untilMs`. Returns the steps run. */
  runUntil(untilMs: number, maxSteps: number): number {
    let steps = 0;
    for (let due = this.nextDueMs(); due !== undefined && due <= untilMs && steps < maxSteps; due = this.nextDueMs()) {
      this.step();
      steps++;
    }
    if (steps < maxSteps) this.nowMs = Math.max(this.nowMs, untilMs);
    return steps;
  }

  /** Moves time forward by `ms`, firing due timers in order (also those set inside the window); at most `stepsMax`. */
  advance(ms: number, stepsMax = 1_000_000): void {
    const untilMs = this.nowMs + ms;
    if (this.runUntil(untilMs, stepsMax) >= stepsMax && (this.nextDueMs() ?? Infinity) <= untilMs) {
      throw new Error(`virtual clock: more than ${stepsMax} timers in ${ms} ms`);
    }
  }

  /** Live (not cancelled) timers still queued. */
  get pendingTimers(): number {
    return this.heap.filter((entry) => !entry.cancelled).length;
  }

  private before(a: Entry, b: Entry): boolean {
    return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.sequence < b.sequence);
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): Entry | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}
