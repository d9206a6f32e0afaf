/** `abortable`: a wait that a signal ends at once with CALL_ABORTED, running its clean-up once. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { abortable } from './abort.js';

describe('abortable', () => {
  it('without a signal, or before it aborts, is the promise itself', async () => {
    expect(await abortable(Promise.resolve(1), undefined, 'x')).toBe(1);
    const controller = new AbortController();
    let cleanUps = 0;
    expect(await abortable(Promise.resolve(2), controller.signal, 'x', () => cleanUps++)).toBe(2);
    await expect(abortable(Promise.reject(new LfaasError(ErrorCode.EXEC_TIMEOUT, 'late')), controller.signal, 'x')).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    controller.abort();
    expect(cleanUps).toBe(0);
  });

  it('rejects CALL_ABORTED when the signal aborts (the reason as cause), and runs the clean-up once', async () => {
    const controller = new AbortController();
    let cleanUps = 0;
    const never = new Promise<number>(() => undefined);
    const waiting = abortable(never, controller.signal, 'call c1', () => {
      cleanUps++;
      return Promise.reject(new Error('a failing clean-up is not the caller\'s'));
    });
    const reason = new Error('stop');
    controller.abort(reason);
    const error = (await waiting.then(
      () => undefined,
      (thrown: unknown) => thrown,
    )) as LfaasError;
    expect(error).toBeInstanceOf(LfaasError);
    expect(error.code).toBe(ErrorCode.CALL_ABORTED);
    expect(error.cause).toBe(reason);
    expect(error.retryable).toBe(false);
    expect(cleanUps).toBe(1);
    // Already aborted: rejected at once.
    await expect(abortable(never, AbortSignal.abort(), 'call c2')).rejects.toMatchObject({ code: 'CALL_ABORTED' });
  });
});
