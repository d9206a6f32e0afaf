/**
 * A trusted runtime thread (isolation level `none`): the function runtime on a `node:vm` realm,
 * talking to the executor over the thread's port. No wall (see sandbox/realm-vm.ts).
 */
import { parentPort } from 'node:worker_threads';
import { checkPoolMessage } from './protocol.js';
import type { RuntimeAnswer } from './protocol.js';
import { vmRealm } from './realm-vm.js';
import { FunctionRuntime } from './runtime.js';

const port = parentPort!;
const runtime = new FunctionRuntime((answer: RuntimeAnswer) => port.postMessage(answer), vmRealm);
// A function's stray promise (rejected after its call returned) must not end the thread.
process.on('unhandledRejection', () => {});
port.on('message', (message: unknown) => runtime.receive(checkPoolMessage(message)));
port.postMessage({ kind: 'ready' } satisfies RuntimeAnswer);
