import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError, isLfaasError } from '../lattices/index.js';
import { propertyRuns } from '../lattices/testing.js';
import { errorFromWireMessage } from './errors-wire.js';
import { DEFAULT_MAX_FRAME_BYTES, decodeEnvelope, encodeEnvelope, peekReplyAddress, replyAddressOf, replyError } from './frame.js';
import { pb } from './messages.js';
import type { PbTypes } from './messages.js';
import { addressArbitrary, envelopeArbitrary, envelopeBodyArbitraries, normaliseEnvelope } from './testing.js';
import { BODY_TYPES, validateEnvelope } from './validate.js';

const HEADER_FIELDS = new Set(['requestId', 'replyTo', 'responseTo', 'sender', 'traceId']);

/**
 * Decodes `frame`: either it throws an LfaasError with a PROTO_* code, or it returns an envelope
 * that is valid by every rule and survives another round trip unchanged.
 */
function decodeOrProtoError(frame: Uint8Array): void {
  let envelope: PbTypes.Envelope;
  try {
    envelope = decodeEnvelope(frame);
  } catch (error) {
    expect(isLfaasError(error), `not an LfaasError: ${String(error)}`).toBe(true);
    expect((error as LfaasError).code).toMatch(/^PROTO_/);
    return;
  }
  expect(envelope.body).toBeDefined();
  validateEnvelope(envelope);
  expect(normaliseEnvelope(decodeEnvelope(encodeEnvelope(envelope)))).toEqual(normaliseEnvelope(envelope));
}

describe('envelope codec', () => {
  it('has an arbitrary for every body type', () => {
    expect(Object.keys(envelopeBodyArbitraries).sort()).toEqual(Object.keys(BODY_TYPES).sort());
  });

  it('round-trips every valid envelope: decode(encode(e)) equals e up to protobuf defaults', () => {
    fc.assert(
      fc.property(envelopeArbitrary, (envelope) => {
        const frame = encodeEnvelope(envelope, { validate: true });
        const decoded = decodeEnvelope(frame);
        expect(normaliseEnvelope(decoded)).toEqual(normaliseEnvelope(envelope));
        expect(decoded.body).toBe(Object.keys(envelope).find((key) => !HEADER_FIELDS.has(key)));
        expect(encodeEnvelope(decoded)).toEqual(frame);
      }),
      { numRuns: propertyRuns(500) },
    );
  });

  it('random bytes give a valid envelope or a PROTO_* error, never anything else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), decodeOrProtoError), { numRuns: propertyRuns(2000) });
  });

  it('random bytes after a valid header, or inside a body, give a valid envelope or a PROTO_* error', () => {
    // Pure noise rarely gets past the first tag; these reach deeper into the decoder and validator.
    const bodyField = fc.constantFrom(...[10, 11, ...Array.from({ length: 14 }, (_, i) => 20 + i), ...Array.from({ length: 9 }, (_, i) => 40 + i)]);
    fc.assert(
      fc.property(bodyField, fc.uint8Array({ maxLength: 96 }), (field, noise) => {
        const writer = pb.Envelope.encode({ sender: 's' });
        writer.uint32((field << 3) | 2).bytes(noise);
        decodeOrProtoError(writer.finish());
      }),
      { numRuns: propertyRuns(2000) },
    );
  });

  it('truncated and bit-flipped valid frames give a valid envelope or a PROTO_* error', () => {
    fc.assert(
      fc.property(envelopeArbitrary, fc.nat(), fc.nat(), (envelope, cut, flip) => {
        const frame = encodeEnvelope(envelope);
        decodeOrProtoError(frame.subarray(0, cut % (frame.length + 1)));
        const flipped = Uint8Array.from(frame);
        if (flipped.length > 0) flipped[flip % flipped.length]! ^= 1 << flip % 8;
        decodeOrProtoError(flipped);
      }),
      { numRuns: propertyRuns(1000) },
    );
  });

  it('refuses an oversized frame before parsing it, and quickly', () => {
    // A valid envelope: only the size check can refuse it.
    const frame = encodeEnvelope({ echo: { payload: new Uint8Array(DEFAULT_MAX_FRAME_BYTES) } });
    expect(frame.byteLength).toBeGreaterThan(DEFAULT_MAX_FRAME_BYTES);
    expect(decodeEnvelope(frame, { maxFrameBytes: frame.byteLength }).body).toBe('echo');
    for (let i = 0; i < 1000; i++) {
      expect(() => decodeEnvelope(frame)).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_TOO_LARGE }));
    }
    // 1000 refusals of a 16 MiB frame: parsing each would take the test past its timeout.
    const small = encodeEnvelope({ echo: { payload: new Uint8Array(2000) } });
    expect(() => decodeEnvelope(small, { maxFrameBytes: 1024 })).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_TOO_LARGE }));
  });

  it('refuses to encode an envelope larger than the frame limit', () => {
    expect(() => encodeEnvelope({ echo: { payload: new Uint8Array(2000) } }, { maxFrameBytes: 1024 })).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_TOO_LARGE }));
    expect(encodeEnvelope({ echo: { payload: new Uint8Array(1000) } }, { maxFrameBytes: 1024 }).byteLength).toBeLessThanOrEqual(1024);
  });

  it('refuses a frame without a body, or with only a body this version does not know', () => {
    expect(() => decodeEnvelope(encodeEnvelope({ sender: 'x' }))).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_UNKNOWN_MESSAGE }));
    expect(() => decodeEnvelope(new Uint8Array())).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_UNKNOWN_MESSAGE }));
    const writer = pb.Envelope.encode({ sender: 'x' });
    writer.uint32((99 << 3) | 2).bytes(new Uint8Array([8, 1]));
    expect(() => decodeEnvelope(writer.finish())).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_UNKNOWN_MESSAGE }));
  });

  it('refuses bytes protobuf cannot read with PROTO_MALFORMED', () => {
    const invalidUtf8 = pb.Envelope.encode({}).uint32((4 << 3) | 2).bytes(new Uint8Array([0xc3, 0x28])).finish();
    for (const frame of [new Uint8Array([0x0a, 0x05, 0x61]), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), invalidUtf8, new Uint8Array([0x07])]) {
      expect(() => decodeEnvelope(frame)).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED }));
    }
  });
});

describe('peekReplyAddress', () => {
  const requestArbitrary = fc
    .tuple(envelopeArbitrary, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), addressArbitrary, fc.string({ maxLength: 20 }))
    .map(([envelope, requestId, replyTo, traceId]) => ({ request: { ...envelope, responseTo: 0, requestId, replyTo, traceId }, requestId, replyTo, traceId }));

  it('reads the reply address of any request, even when the rest of the frame is damaged', () => {
    fc.assert(
      fc.property(requestArbitrary, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 }), ({ request, requestId, replyTo, traceId }, cut, noise) => {
        const expected = { requestId, replyTo, ...(traceId === '' ? {} : { traceId }) };
        const frame = encodeEnvelope(request);
        expect(peekReplyAddress(frame)).toEqual(expected);
        expect(replyAddressOf(decodeEnvelope(frame))).toEqual(expected);
        // The header comes first in the frame: damage after it (truncation, garbage) leaves it readable.
        const headerEnd = encodeEnvelope({ requestId, replyTo, sender: request.sender ?? '', traceId }).length;
        const truncated = frame.subarray(0, headerEnd + (cut % (frame.length - headerEnd + 1)));
        expect(peekReplyAddress(truncated)).toEqual(expected);
        // A body field (20) whose length runs past the end, then garbage.
        expect(peekReplyAddress(new Uint8Array([...frame.subarray(0, headerEnd), 0xa2, 0x01, 0x7f, ...noise]))).toEqual(expected);
      }),
      { numRuns: propertyRuns(500) },
    );
  });

  it('finds nothing in one-way messages and responses', () => {
    expect(peekReplyAddress(encodeEnvelope({ echo: {} }))).toBeUndefined();
    expect(peekReplyAddress(encodeEnvelope({ responseTo: 5, echo: {} }))).toBeUndefined();
    expect(peekReplyAddress(encodeEnvelope({ requestId: 5, echo: {} }))).toBeUndefined();
    expect(peekReplyAddress(new Uint8Array([0xff, 0xff, 0xff]))).toBeUndefined();
    expect(replyAddressOf(decodeEnvelope(encodeEnvelope({ echo: {} })))).toBeUndefined();
  });

  it('never throws on random bytes and only returns plausible addresses', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (frame) => {
        const address = peekReplyAddress(frame);
        if (address === undefined) return;
        expect(Number.isSafeInteger(address.requestId) && address.requestId > 0).toBe(true);
        expect(address.replyTo.length).toBeGreaterThan(0);
        expect(Buffer.byteLength(address.replyTo)).toBeLessThanOrEqual(1024);
      }),
      { numRuns: propertyRuns(2000) },
    );
  });

  it('believes only transport addresses (a hostile reply address gets no answer)', () => {
    for (const replyTo of ['tcp://*:5555', 'tcp://-:1', 'tcp://\u00e9:1', 'tcp://127.0.0.1:0', 'tcp://127.0.0.1:65536', 'ipc://x', ' ']) {
      expect(peekReplyAddress(encodeEnvelope({ requestId: 1, replyTo, echo: {} }))).toBeUndefined();
    }
  });

  it('refuses implausibly long reply addresses', () => {
    expect(peekReplyAddress(encodeEnvelope({ requestId: 1, replyTo: 'x'.repeat(2000), echo: {} }))).toBeUndefined();
  });
});

describe('replyError', () => {
  it('answers a request with a valid ErrorReply that rebuilds the same typed error', () => {
    const request = decodeEnvelope(encodeEnvelope({ requestId: 42, replyTo: 'tcp://127.0.0.1:9', traceId: 't-1', echo: {} }));
    const to = replyAddressOf(request);
    expect(to).toBeDefined();
    const reply = decodeEnvelope(encodeEnvelope(replyError(to!, new LfaasError(ErrorCode.KVS_WRONG_NODE, 'ask n2'), { sender: 'mem://n1' }), { validate: true }));
    expect(reply.body).toBe('errorReply');
    expect(Number(reply.responseTo)).toBe(42);
    expect(reply.traceId).toBe('t-1');
    expect(reply.sender).toBe('mem://n1');
    const error = errorFromWireMessage(reply.errorReply!.error!);
    expect({ code: error.code, message: error.message }).toEqual({ code: ErrorCode.KVS_WRONG_NODE, message: 'ask n2' });
  });

  it('answers a frame that failed validation, through peekReplyAddress', () => {
    const frame = encodeEnvelope({ requestId: 7, replyTo: 'mem://client', kvsRequest: { kind: 77 as PbTypes.RequestKind, tuples: [{ key: 'k' }] } });
    let failure: unknown;
    try {
      decodeEnvelope(frame);
    } catch (error) {
      failure = error;
    }
    const to = peekReplyAddress(frame);
    expect(to).toEqual({ requestId: 7, replyTo: 'mem://client' });
    const reply = decodeEnvelope(encodeEnvelope(replyError(to!, failure)));
    expect(errorCodeOf(reply)).toBe(ErrorCode.PROTO_UNKNOWN_ENUM);
  });

  it('normalises anything thrown, and refuses to answer a non-request', () => {
    expect(errorCodeOf(decodeEnvelope(encodeEnvelope(replyError({ requestId: 1, replyTo: 'mem://a' }, 'a string'))))).toBe(ErrorCode.INTERNAL);
    expect(() => replyError({ requestId: 0, replyTo: 'a' }, new Error('x'))).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
  });
});

function errorCodeOf(envelope: PbTypes.Envelope): ErrorCode {
  return errorFromWireMessage(envelope.errorReply?.error ?? {}).code;
}
