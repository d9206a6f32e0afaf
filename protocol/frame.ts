/**
 * Envelope encoding and validated decoding. Every frame a node receives goes through
 * `decodeEnvelope`; a failure is a typed `LfaasError` (PROTO_*), never a crash or a half-read
 * message.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { pb } from './messages.js';
import type { PbTypes } from './messages.js';

/** The default largest frame a node accepts: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface DecodeOptions {
  /** Frames larger than this are refused with PROTO_TOO_LARGE. */
  readonly maxFrameBytes?: number;
}

/** Encodes an envelope to one frame. */
export function encodeEnvelope(envelope: PbTypes.IEnvelope): Uint8Array {
  return pb.Envelope.encode(envelope).finish();
}

/** Decodes and validates one frame. Throws `LfaasError` with a PROTO_* code. */
export function decodeEnvelope(frame: Uint8Array, options: DecodeOptions = {}): PbTypes.Envelope {
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (frame.byteLength > maxFrameBytes) {
    throw new LfaasError(ErrorCode.PROTO_TOO_LARGE, `frame of ${frame.byteLength} bytes exceeds ${maxFrameBytes}`);
  }
  let envelope: PbTypes.Envelope;
  try {
    envelope = pb.Envelope.decode(frame);
  } catch (cause) {
    throw new LfaasError(ErrorCode.PROTO_MALFORMED, `malformed envelope: ${(cause as Error).message}`, { cause });
  }
  if (envelope.body === undefined) {
    throw new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, 'envelope has no body');
  }
  return envelope;
}
