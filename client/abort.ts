/**
 * Cancellation helpers of the SDK: an `AbortSignal` on a call or a wait rejects it at once with
 * CALL_ABORTED (the signal's reason as `cause`) and runs the caller's clean-up (asking the cluster
 * to cancel the call), whatever the pending operation is doing.
 *
 * @example
 * ```ts
 * const value = await abortable(faas.call(square, [7]), AbortSignal.timeout(500), 'call square');
 * ```
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';

/** The CALL_ABORTED error of an aborted wait. */
export function abortedError(what: string, signal: AbortSignal): LfaasError {
  return new LfaasError(ErrorCode.CALL_ABORTED, `${what} was aborted`, { cause: signal.reason });
}

/**
 * `promise`, or a CALL_ABORTED rejection as soon as `signal` aborts (then `onAbort` runs once; its
 * failure is not the caller's). Without a signal, `promise` itself.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string, onAbort?: () => unknown): Promise<T> {
  if (signal === undefined) return promise;
  const aborted = (): LfaasError => {
    try {
      const cleanUp = onAbort?.();
      if (cleanUp instanceof Promise) cleanUp.catch(() => undefined);
    } catch {
      // The clean-up is best effort: the caller's answer is the abort.
    }
    return abortedError(what, signal);
  };
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(aborted());
  }
  return new Promise<T>((resolve, reject) => {
    const onSignal = (): void => reject(aborted());
    signal.addEventListener('abort', onSignal, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onSignal);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onSignal);
        reject(error as Error);
      },
    );
  });
}
