/**
 * Envelope encoding and validated decoding. Every frame a node receives goes through
 * `decodeEnvelope`; a failure is a typed `LfaasError` (PROTO_*), never a crash or a half-read
 * message.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { pb } from './messages.js';
import type { PbTypes } from './messages.js';
import { validateEnvelope } from './validate.js';
import type { ValidateOptions } from './validate.js';

/** The default largest frame a node accepts: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface DecodeOptions extends ValidateOptions {
  /** Frames larger than this are refused with PROTO_TOO_LARGE. */
  readonly maxFrameBytes?: number;
}

/** The header fields an envelope carries besides its body. */
export interface EnvelopeHeader {
  readonly requestId?: number;
  readonly replyTo?: string;
  readonly responseTo?: number;
  readonly sender?: string;
  readonly traceId?: string;
}

/**
 * A body plus header fields as a generated `Envelope` instance. Use it instead of object spread
 * (`{ ...body, requestId }`): protobufjs encodes spread objects about 20x slower (measured:
 * 0.21 M/s against 4.4 M/s for an echo envelope), which made request/response several times slower.
 */
export function envelopeWith(body: PbTypes.IEnvelope, header: EnvelopeHeader): PbTypes.Envelope {
  const envelope = pb.Envelope.create(body);
  if (header.requestId !== undefined) envelope.requestId = header.requestId;
  if (header.replyTo !== undefined) envelope.replyTo = header.replyTo;
  if (header.responseTo !== undefined) envelope.responseTo = header.responseTo;
  if (header.sender !== undefined) envelope.sender = header.sender;
  if (header.traceId !== undefined) envelope.traceId = header.traceId;
  return envelope;
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
  validateEnvelope(envelope, options);
  return envelope;
}

/**
 * Reads `request_id` and `reply_to` from a frame that failed validation, so its sender can still
 * get a typed error. Undefined when they cannot be read.
 */
export function peekReplyAddress(frame: Uint8Array): { requestId: number; replyTo: string } | undefined {
  try {
    const partial = pb.Envelope.decode(frame);
    const requestId = Number(partial.requestId);
    if (partial.replyTo.length > 0 && Number.isSafeInteger(requestId) && requestId > 0) return { requestId, replyTo: partial.replyTo };
  } catch {
    // Not even the header is readable.
  }
  return undefined;
}
