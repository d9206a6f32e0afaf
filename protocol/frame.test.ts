import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isLfaasError } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, peekReplyAddress } from './frame.js';
import { pb } from './messages.js';
import { envelopeArbitrary } from './testing.js';

const runs = process.env['LFAAS_LONG'] === '1' ? 20_000 : 500;

/** Plain JSON of a decoded envelope, with bytes as arrays, for deep comparison. */
function plain(envelope: ReturnType<typeof decodeEnvelope>): unknown {
  return pb.Envelope.toObject(envelope, { defaults: false, bytes: Array, longs: Number });
}

function expectProtoError(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    expect(isLfaasError(error)).toBe(true);
    expect((error as { code: string }).code).toMatch(/^PROTO_/);
    return;
  }
}

describe('envelope codec', () => {
  it('round-trips every valid envelope', () => {
    fc.assert(
      fc.property(envelopeArbitrary, (envelope) => {
        const decoded = decodeEnvelope(encodeEnvelope(envelope));
        expect(plain(decoded)).toEqual(plain(pb.Envelope.decode(pb.Envelope.encode(pb.Envelope.fromObject(envelope)).finish())));
        expect(decoded.body).toBe(Object.keys(envelope).find((k) => !['sender', 'requestId', 'replyTo', 'responseTo'].includes(k)));
        expect(encodeEnvelope(decoded)).toEqual(encodeEnvelope(envelope));
      }),
      { numRuns: runs },
    );
  });

  it('random bytes give a valid envelope or a PROTO_* error, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (frame) => {
        expectProtoError(() => decodeEnvelope(frame));
      }),
      { numRuns: runs * 4 },
    );
  });

  it('truncated and bit-flipped valid frames give a valid envelope or a PROTO_* error', () => {
    fc.assert(
      fc.property(envelopeArbitrary, fc.nat(), fc.nat(), (envelope, cut, flip) => {
        const frame = encodeEnvelope(envelope);
        expectProtoError(() => decodeEnvelope(frame.subarray(0, cut % (frame.length + 1))));
        const flipped = Uint8Array.from(frame);
        if (flipped.length > 0) flipped[flip % flipped.length]! ^= 1 << flip % 8;
        expectProtoError(() => decodeEnvelope(flipped));
      }),
      { numRuns: runs },
    );
  });

  it('refuses an oversized frame before parsing it', () => {
    const frame = new Uint8Array(2048).fill(0xff);
    expect(() => decodeEnvelope(frame, { maxFrameBytes: 1024 })).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_TOO_LARGE }));
  });

  it('refuses a frame without a body', () => {
    expect(() => decodeEnvelope(encodeEnvelope({ sender: 'x' }))).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_UNKNOWN_MESSAGE }));
  });

  it('refuses unknown enum values with the field path', () => {
    const frame = encodeEnvelope({ kvsRequest: { kind: 99 as never, tuples: [{ key: 'k' }] } });
    expect(() => decodeEnvelope(frame)).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_UNKNOWN_ENUM, message: expect.stringContaining('kvsRequest.kind') }));
  });

  it('refuses missing required fields with the field path', () => {
    const frame = encodeEnvelope({ kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'a' }, { key: '' }] } });
    expect(() => decodeEnvelope(frame)).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MISSING_FIELD, message: expect.stringContaining('kvsRequest.tuples[1].key') }));
    expect(() => decodeEnvelope(encodeEnvelope({ kvsRequest: { kind: pb.RequestKind.GET } }))).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MISSING_FIELD }));
    expect(() => decodeEnvelope(encodeEnvelope({ requestId: 7, echo: {} }))).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MISSING_FIELD, message: expect.stringContaining('replyTo') }));
  });

  it('refuses 64-bit integers beyond 2^53', () => {
    // A heartbeat whose sentAtMs is 2^60, written field by field (the generated encoder would refuse it).
    const writer = pb.Envelope.encode({});
    writer.uint32((27 << 3) | 2).fork().uint32((1 << 3) | 2).string('n').uint32((3 << 3) | 0).uint64(2 ** 60).ldelim();
    expect(() => decodeEnvelope(writer.finish())).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED }));
  });

  it('caps repeated fields', () => {
    const frame = encodeEnvelope({ subscribe: { subscriber: 's', keys: ['a', 'b', 'c'] } });
    expect(() => decodeEnvelope(frame, { maxListLength: 2 })).toThrow(expect.objectContaining({ code: ErrorCode.PROTO_MALFORMED }));
    expect(decodeEnvelope(frame, { maxListLength: 3 }).subscribe?.keys).toEqual(['a', 'b', 'c']);
  });

  it('peeks the reply address of a frame that fails validation', () => {
    const frame = encodeEnvelope({ requestId: 42, replyTo: 'tcp://127.0.0.1:9', kvsRequest: { kind: 77 as never, tuples: [{ key: 'k' }] } });
    expect(() => decodeEnvelope(frame)).toThrow();
    expect(peekReplyAddress(frame)).toEqual({ requestId: 42, replyTo: 'tcp://127.0.0.1:9' });
    expect(peekReplyAddress(new Uint8Array([0xff, 0xff, 0xff]))).toBeUndefined();
  });
});
