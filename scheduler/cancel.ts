/**
 * A cancel at the scheduler machine (faas.cancel; only the call's owner gets here,
 * owner-access.ts): each executor holding the run is told to abort it (its sink answers
 * EXEC_CANCELLED); the run leaves this scheduler's books, so it is never dispatched again, and an
 * async call's result is written EXEC_CANCELLED here too (an executor's cancel may be lost). A
 * sync caller is answered too. A run this scheduler does not hold (finished, unknown, another
 * scheduler's) is not cancelled here.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { envelopeWith, errorToWire } from '../protocol/index.js';
import type { Effect } from '../protocol/index.js';
import type { AsyncRetries } from './async-retries.js';
import type { Dispatch, ExecutorEntry } from './run-books.js';

/** The scheduler's books a cancel changes. */
export interface CancelBooks {
  /** The scheduler's address (the sender of its messages). */
  readonly id: string;
  /** The runs it holds, by run id. */
  readonly runs: Map<string, Dispatch>;
  /** The executors alive, by address. */
  readonly executors: ReadonlyMap<string, ExecutorEntry>;
  /** Its async runs waiting for room, and its failure writes. */
  readonly retries: AsyncRetries;
}

/**
 * Cancels the run `callId` if the scheduler holds it: `cancelled` whether it did, `effects` the
 * aborts to its executors, its result write or its caller's answer (not the answer to the cancel).
 *
 * @example
 * const { cancelled, effects } = cancelRun(books, 'alice/call-1');
 */
export function cancelRun(books: CancelBooks, callId: string): { readonly cancelled: boolean; readonly effects: Effect[] } {
  const dispatch = books.runs.get(callId);
  if (dispatch === undefined || dispatch.finished) return { cancelled: false, effects: [] };
  const error = new LfaasError(ErrorCode.EXEC_CANCELLED, `call ${callId} was cancelled`);
  const effects: Effect[] = [];
  for (const address of dispatch.seqs.keys()) {
    books.executors.get(address)?.outstanding.delete(callId);
    effects.push({ kind: 'send', to: address, envelope: envelopeWith({ cancelCall: { callId } }, { sender: books.id }) });
  }
  dispatch.seqs.clear();
  dispatch.finished = true;
  books.runs.delete(callId);
  books.retries.drop(callId);
  if (dispatch.resultKey.length > 0) {
    // One attempt later than the run's: a result its executor wrote first (the call finished
    // just before) wins the result key over this (the lowest attempt wins), as does the
    // executor's own EXEC_CANCELLED.
    dispatch.attempt++;
    effects.push(...books.retries.writeFailure(dispatch, error));
  } else if (dispatch.replyTo.length > 0) {
    effects.push({ kind: 'send', to: dispatch.replyTo, envelope: envelopeWith({ callResponse: { callId, error: errorToWire(error) } }, { responseTo: dispatch.replyRequestId, sender: books.id }) });
  }
  return { cancelled: true, effects };
}
