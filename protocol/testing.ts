/**
 * Test support: fast-check arbitraries for envelopes. Imported by tests as `protocol/testing.js`.
 */
import fc from 'fast-check';
import type { PbTypes } from './messages.js';

const nonEmpty = fc.string({ minLength: 1, maxLength: 24 });
const bytes = fc.uint8Array({ maxLength: 64 });
const u32 = fc.integer({ min: 1, max: 0xffff_ffff });
const u53 = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const errorCode = fc.integer({ min: 1, max: 28 });

const keyTuple = fc.record({ key: nonEmpty, latticeType: fc.integer({ min: 1, max: 12 }), payload: fc.uint8Array({ minLength: 1, maxLength: 64 }) });
const nodeInfo = fc.record({
  id: nonEmpty,
  tier: fc.constantFrom(1, 2),
  address: nonEmpty,
  shardAddresses: fc.array(nonEmpty, { maxLength: 3 }),
  virtualNodes: u32,
});

/** Envelope bodies, one arbitrary per message kind, all valid. */
export const envelopeBodyArbitrary: fc.Arbitrary<PbTypes.IEnvelope> = fc.oneof(
  fc.record({ echo: fc.record({ payload: bytes }) }),
  fc.record({ errorReply: fc.record({ error: fc.record({ code: errorCode, message: fc.string({ maxLength: 40 }) }) }) }),
  fc.record({ kvsRequest: fc.record({ kind: fc.constantFrom(1, 2, 3), tuples: fc.array(keyTuple, { minLength: 1, maxLength: 4 }), ack: fc.constantFrom(1, 2, 3) }) }),
  fc.record({ kvsResponse: fc.record({ tuples: fc.array(keyTuple, { minLength: 1, maxLength: 4 }) }) }),
  fc.record({ gossip: fc.record({ fromNode: nonEmpty, tuples: fc.array(keyTuple, { minLength: 1, maxLength: 4 }) }) }),
  fc.record({ ringUpdate: fc.record({ epoch: u53, nodes: fc.array(nodeInfo, { minLength: 1, maxLength: 3 }) }) }),
  fc.record({ heartbeat: fc.record({ nodeId: nonEmpty, ringEpoch: u53, sentAtMs: u53 }) }),
  fc.record({ callRequest: fc.record({ callId: nonEmpty, function: nonEmpty, version: u32, consistency: fc.constantFrom(1, 2, 3), timeoutMs: u32 }) }),
  fc.record({ dagTrigger: fc.record({ runId: nonEmpty, sourceFunction: nonEmpty, targetFunction: nonEmpty, value: bytes }) }),
);

/** Whole valid envelopes: a body plus a request or response header. */
export const envelopeArbitrary: fc.Arbitrary<PbTypes.IEnvelope> = fc
  .tuple(envelopeBodyArbitrary, fc.option(fc.tuple(u53, nonEmpty), { nil: undefined }), fc.option(u53, { nil: undefined }), nonEmpty)
  .map(([body, request, responseTo, sender]) => ({
    ...body,
    sender,
    ...(request === undefined ? {} : { requestId: request[0], replyTo: request[1] }),
    ...(responseTo === undefined ? {} : { responseTo }),
  }));
