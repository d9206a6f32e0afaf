/**
 * The ZAP handler (ZeroMQ RFC 27) of the process's ZeroMQ context (one context, shared by worker
 * threads): every CURVE handshake of every secure transport asks it whether the connecting key
 * may connect, before any of the peer's messages is read. It runs in the main thread; a worker
 * thread's transports (a storage node's shards) use the main thread's, whose process has a
 * secure transport open for as long as its workers run.
 *
 * The policy is the process's (see `setZapPolicy`): by default every key may connect, since
 * clients are not members and come with keys of their own; what a key may then do is decided
 * per message (the frame seal says which key sent it; machine-shell.ts checks membership). A
 * process with a member list refuses keys that list revoked, so a removed member cannot even
 * finish a handshake. The handler runs while at least one secure transport is open.
 */
import { isMainThread } from 'node:worker_threads';
import { Reply } from 'zeromq';
import { zapAllows, zapCounters } from './zap-policy.js';

// The policy lives in zap-policy.ts (no ZeroMQ there: the node:net transport asks it too).
export { setZapPolicy, zapAllows, zapCounters } from './zap-policy.js';
export type { ZapPolicy } from './zap-policy.js';

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

let handler: { socket: Reply; ready: Promise<void> } | undefined;
let users = 0;

/**
 * A secure transport starts: the handler runs from now until the last one stops (an open socket
 * would keep the process alive).
 */
export async function useZapHandler(): Promise<void> {
  if (!isMainThread) return;
  users++;
  if (handler === undefined) {
    const socket = new Reply({ linger: 0 });
    handler = { socket, ready: bindHandler(socket) };
  }
  await handler.ready;
}

/** Binds the handler's endpoint; a handler closed a moment ago may still hold it (closing is asynchronous). */
async function bindHandler(socket: Reply): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await socket.bind(ZAP_ENDPOINT);
      void serve(socket);
      return;
    } catch (error) {
      if (attempt >= 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

export function releaseZapHandler(): void {
  if (!isMainThread) return;
  users = Math.max(0, users - 1);
  if (users > 0 || handler === undefined) return;
  const { socket, ready } = handler;
  handler = undefined;
  void ready.then(
    () => socket.close(),
    () => socket.close(),
  );
}

async function serve(socket: Reply): Promise<void> {
  for (;;) {
    let request: Buffer[];
    try {
      request = await socket.receive();
    } catch {
      return; // Closed.
    }
    const requestId = request[1] ?? Buffer.alloc(0);
    const mechanism = request[5]?.toString() ?? '';
    const key = request[6];
    // zapAllows counts the answer (and refuses a key of another length); a handshake of another
    // mechanism is refused and counted here.
    let allowed = false;
    if (mechanism === 'CURVE' && key !== undefined) allowed = zapAllows(key);
    else zapCounters.refused++;
    try {
      await socket.send(['1.0', requestId, allowed ? '200' : '400', allowed ? 'OK' : 'key not allowed', '', '']);
    } catch {
      return;
    }
  }
}
