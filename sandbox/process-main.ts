/**
 * A sandbox process: the function runtime on a Hardened JavaScript realm, talking to the executor
 * over file descriptor 3 (a pipe the executor made; frames of sandbox/protocol.ts). Started by the
 * executor with Node's permission model (no file writes, no child processes, no workers, no
 * addons, reads of this bundle only), `--zero-fill-buffers`, and where the machine allows inside a
 * bubblewrap namespace as an unprivileged user with no network.
 *
 * Order matters: every module is loaded, then Buffer's shared pool is switched off (a pooled
 * Buffer's `.buffer` would show other values' bytes) and Node's inspect hooks are removed from
 * the host classes functions can reach, then `lockdown()` freezes the intrinsics,
 * then everything of the runtime that user code can reach (its error and lattice classes, Buffer)
 * is hardened. Only then is the first message read.
 */
import { Socket } from 'node:net';
import * as lattices from '../lattices/index.js';
import { FrameReader, checkPoolMessage, frameWriter } from './protocol.js';
import { lockdownProcess, sesRealm } from './realm-ses.js';
import { FunctionRuntime } from './runtime.js';

Buffer.poolSize = 0;
// Node's inspect hooks on the host classes a function can reach (Buffer arguments, URL, the text
// codecs) call their hook with Node's own `util.inspect`, a mutable object of the whole process:
// a channel between functions, and a lever on Node's internals. Gone before anything is frozen.
const INSPECT = Symbol.for('nodejs.util.inspect.custom');
for (const prototype of [Buffer.prototype, URL.prototype, URLSearchParams.prototype, TextEncoder.prototype, TextDecoder.prototype]) delete (prototype as unknown as Record<symbol, unknown>)[INSPECT];
lockdownProcess();
harden({ ...lattices });
harden(Buffer);

const channel = new Socket({ fd: 3, readable: true, writable: true });
const write = frameWriter(channel);
const runtime = new FunctionRuntime(write, sesRealm);
const reader = new FrameReader();

// The executor went away, or broke the protocol: this process has no one to answer; it ends loudly.
const fatal = (why: string): never => {
  process.stderr.write(`lfaas sandbox: ${why}\n`);
  process.exit(70);
};
channel.on('data', (chunk: Buffer) => {
  let messages: unknown[];
  try {
    messages = reader.push(chunk);
    for (const message of messages) runtime.receive(checkPoolMessage(message));
  } catch (error) {
    fatal(`a message from the executor broke the protocol: ${(error as Error).message}`);
  }
});
channel.on('end', () => process.exit(0));
channel.on('error', (error) => fatal(`the channel to the executor failed: ${error.message}`));
// A function's stray promise (rejected after its call returned) must not end the process.
process.on('unhandledRejection', () => {});
runtime.warmUp();
write({ kind: 'ready' });
