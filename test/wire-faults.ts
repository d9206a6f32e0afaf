/**
 * What the bad-input, fault and FaaS tests share: a transport that damages the next frame it
 * sends (so an Rpc request carries a broken frame while the Rpc still awaits its answer), the typed
 * error a promise must reject with, and a function's code from its body.
 */
import { expect } from 'vitest';
import { LfaasError } from '../lattices/index.js';
import type { FrameReceiver, NodeTransport, Transport } from '../protocol/index.js';

/**
 * A ZeroMQ transport whose next sent frame can be rewritten (truncated...), so an `Rpc` request
 * carries a damaged frame while the Rpc still awaits the answer to its request id (the approach
 * of test/kvs-bad-input.test.ts).
 */
export class ManglingTransport implements Transport {
  private mangleNext: ((frame: Uint8Array) => Uint8Array) | undefined;

  constructor(readonly inner: NodeTransport) {}

  get address(): string {
    return this.inner.address;
  }

  mangleOnce(mangle: (frame: Uint8Array) => Uint8Array): void {
    this.mangleNext = mangle;
  }

  send(to: string, frame: Uint8Array): Promise<void> {
    const mangle = this.mangleNext;
    this.mangleNext = undefined;
    return this.inner.send(to, mangle === undefined ? frame : mangle(frame));
  }

  onFrame(receiver: FrameReceiver): void {
    this.inner.onFrame(receiver);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The typed error a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<LfaasError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(LfaasError);
    return error as LfaasError;
  }
  throw new Error('expected a rejection, the promise resolved');
}

/** A function's CommonJS body. */
export const code = (body: string): { code: string } => ({ code: `module.exports = ${body};` });
