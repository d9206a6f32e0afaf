/**
 * Makes protobufjs decode 64-bit integers as plain numbers instead of `Long` objects. Every
 * 64-bit field of ours (request ids, epochs, wall-clock milliseconds, counts) stays below 2^53,
 * which `validate.ts` checks. Must run before the generated module is evaluated, so
 * `messages.ts` imports this file first.
 */
import protobuf from 'protobufjs/minimal.js';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();
