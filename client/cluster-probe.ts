/**
 * The first contact of a client with its cluster, bounded. ZeroMQ connects lazily: a socket
 * "connected" to a port nobody holds queues its frames and the first request waits its whole
 * budget (a call: 60 s, plus the answer slack). So `connect()` sends one real request (an echo,
 * answered by every role) to the nodes it was given and waits at most `timeoutMs` for any of them
 * to answer; none: TRANSPORT_NO_CLUSTER, "no cluster at <addresses>: is `lfaas up` running?".
 * Any answer counts, an error reply too (a refused token still proves a cluster is there).
 */
import { ErrorCode, LfaasError, ensureLfaasError } from '../lattices/index.js';
import type { Rpc } from '../protocol/index.js';

/** The default bound of the first contact. */
export const CONNECT_TIMEOUT_MS = 2000;

/**
 * Resolves once any of `addresses` answers an echo within `timeoutMs`; otherwise rejects with
 * TRANSPORT_NO_CLUSTER naming them (and `source`, where they came from, when not the caller).
 */
export async function firstContact(rpc: Rpc, addresses: readonly string[], timeoutMs: number, source: string): Promise<void> {
  const answers = addresses.map((address) =>
    rpc.request(address, { echo: {} }, { timeoutMs }).then(
      () => undefined,
      (thrown: unknown) => {
        const error = ensureLfaasError(thrown);
        // A typed refusal is an answer: something is there. A bad address is the caller's error.
        if (error.code === ErrorCode.TRANSPORT_TIMEOUT || error.code === ErrorCode.TRANSPORT_CLOSED || error.code === ErrorCode.TRANSPORT_BUSY) throw error;
        if (error.code === ErrorCode.TRANSPORT_BAD_ADDRESS) throw error;
        return undefined;
      },
    ),
  );
  try {
    await Promise.any(answers);
  } catch (aggregate) {
    const errors = (aggregate as AggregateError).errors.map((error) => ensureLfaasError(error));
    const badAddress = errors.find((error) => error.code === ErrorCode.TRANSPORT_BAD_ADDRESS);
    if (badAddress !== undefined) throw badAddress;
    const from = source === 'options' ? '' : `; the addresses came from ${source}`;
    throw new LfaasError(ErrorCode.TRANSPORT_NO_CLUSTER, `no cluster at ${addresses.join(',')}: is \`lfaas up\` running? (no answer within ${timeoutMs} ms${from})`, { cause: errors[0] });
  }
}
