/**
 * The executor <-> runtime codec (sandbox/protocol.ts), by properties: every valid message of
 * either direction survives encodeFrame -> FrameReader (in any chunking, several frames in one
 * stream) -> checkPoolMessage/checkAnswer unchanged; hostile input (random bytes, random msgpack
 * values, well-framed messages with wrong fields) gives a ProtocolError and nothing else; a frame
 * announcing more than FRAME_BYTES_MAX is refused as soon as its header is in, before any body.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { propertyRuns } from '../lattices/testing.js';
import { CODE_BYTES_MAX, FRAME_BYTES_MAX, FrameReader, ProtocolError, TEXT_FIELD_MAX, checkAnswer, checkPoolMessage, encodeFrame } from './protocol.js';
import type { PoolMessage, RuntimeAnswer } from './protocol.js';

// ---------------------------------------------------------------------------------------------
// Arbitraries of valid messages.

const idArb: fc.Arbitrary<number> = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat(), fc.constantFrom(0, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER));
const durationArb: fc.Arbitrary<number> = fc.oneof(idArb, fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }));
const HOST_OPS = ['get', 'read', 'put', 'merge', 'delete', 'increment', 'infer', 'send', 'recv'] as const;
const LOG_LEVELS = ['log', 'info', 'warn', 'error', 'debug'] as const;

/**
 * The messages of both directions. `big`: fields sometimes at their size boundaries (texts of
 * exactly their limit, code past TEXT_FIELD_MAX, bytes across msgpack's bin8/bin16/bin32
 * boundaries); without it, small fields only (for byte-at-a-time feeding).
 */
function messageArbitraries(big: boolean) {
  /** A well-formed string of at most `max` UTF-16 code units. */
  const textArb = (max: number = TEXT_FIELD_MAX): fc.Arbitrary<string> => {
    const small = fc.string({ unit: 'grapheme', maxLength: 24 }).filter((s) => s.length <= max);
    if (!big) return small;
    return fc.oneof(
      { weight: 30, arbitrary: small },
      { weight: 1, arbitrary: fc.constant('\u00e9'.repeat(max)) },
      { weight: 1, arbitrary: fc.constant('\u{1F600}'.repeat(Math.floor(max / 2))) },
    );
  };
  /** A function's code: sometimes longer than TEXT_FIELD_MAX (code has its own, larger bound). */
  const smallCode = fc.string({ unit: 'grapheme', maxLength: 64 });
  const codeArb: fc.Arbitrary<string> = big ? fc.oneof({ weight: 20, arbitrary: smallCode }, { weight: 1, arbitrary: fc.constant(`module.exports = () => ${JSON.stringify('c'.repeat(TEXT_FIELD_MAX + 10))};`) }) : smallCode;
  const smallBytes = fc.uint8Array({ maxLength: 64 });
  const bytesArb: fc.Arbitrary<Uint8Array> = big
    ? fc.oneof({ weight: 20, arbitrary: fc.uint8Array({ maxLength: 300 }) }, { weight: 1, arbitrary: fc.constantFrom(255, 256, 65_535, 65_536, 70_000).map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 31) & 255)) })
    : smallBytes;

  const call = fc.record(
    {
      kind: fc.constant('call' as const),
      callId: idArb,
      functionId: textArb(),
      code: codeArb,
      args: bytesArb,
      timeoutMs: idArb,
      resultBytesMax: idArb,
      invocation: fc.record({ runId: textArb(), functionName: textArb() }),
    },
    { requiredKeys: ['kind', 'callId', 'functionId', 'timeoutMs', 'resultBytesMax', 'invocation'] },
  );
  const hostReply = fc.record(
    { kind: fc.constant('hostReply' as const), requestId: idArb, payload: bytesArb, error: fc.record({ code: textArb(64), message: textArb() }) },
    { requiredKeys: ['kind', 'requestId'] },
  );
  const abort = fc.record({ kind: fc.constant('abort' as const), callId: idArb });
  const unload = fc.record({ kind: fc.constant('unload' as const), functionId: textArb() });
  const host = fc.record(
    { kind: fc.constant('host' as const), callId: idArb, requestId: idArb, op: fc.constantFrom(...HOST_OPS), key: textArb(), target: textArb(), timeoutMs: durationArb, amount: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), payload: bytesArb },
    { requiredKeys: ['kind', 'callId', 'requestId', 'op'] },
  );
  const log = fc.record(
    { kind: fc.constant('log' as const), callId: idArb, level: fc.constantFrom(...LOG_LEVELS), text: textArb(), fields: textArb() },
    { requiredKeys: ['kind', 'callId', 'level', 'text'] },
  );
  const result = fc.record({ kind: fc.constant('result' as const), callId: idArb, result: bytesArb });
  const loaded = fc.record({ kind: fc.constant('loaded' as const), callId: idArb });
  const error = fc.record({
    kind: fc.constant('error' as const),
    callId: idArb,
    loaded: fc.boolean(),
    error: fc.record({ code: textArb(64), message: textArb(), stack: textArb() }, { requiredKeys: ['code', 'message'] }),
  });
  const ready = fc.constant({ kind: 'ready' as const });
  const byKind: Record<string, fc.Arbitrary<object>> = { call, hostReply, abort, unload, host, log, result, loaded, error, ready };
  return {
    textArb,
    bytesArb,
    byKind,
    pool: fc.oneof(call, hostReply, abort, unload) as fc.Arbitrary<PoolMessage>,
    answer: fc.oneof(host, log, result, loaded, error, ready) as fc.Arbitrary<RuntimeAnswer>,
  };
}
const BIG = messageArbitraries(true);
const SMALL = messageArbitraries(false);
const poolMessageArb = BIG.pool;
const answerArb = BIG.answer;

// ---------------------------------------------------------------------------------------------
// Helpers.

/** Bytes compared as plain arrays (a Buffer arrives where a Uint8Array left). */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(normalise);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, normalise(child)]));
  return value;
}

/** A way to cut a stream: one byte at a time, all at once, or at random points (empty chunks included). */
type Chunking = { readonly kind: 'bytes' } | { readonly kind: 'whole' } | { readonly kind: 'cuts'; readonly cuts: readonly number[] };
const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  fc.constant({ kind: 'bytes' as const }),
  fc.constant({ kind: 'whole' as const }),
  fc.array(fc.nat(), { maxLength: 24 }).map((cuts) => ({ kind: 'cuts' as const, cuts })),
);

function chunk(stream: Buffer, chunking: Chunking): Buffer[] {
  if (chunking.kind === 'whole') return [stream];
  if (chunking.kind === 'bytes') return Array.from({ length: stream.byteLength }, (_, i) => stream.subarray(i, i + 1));
  const points = chunking.cuts.map((cut) => cut % (stream.byteLength + 1)).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of points) {
    chunks.push(stream.subarray(from, point));
    from = point;
  }
  chunks.push(stream.subarray(from));
  return chunks;
}

/** Feeds chunks to a new reader; every decoded value, in order. */
function readAll(chunks: readonly Buffer[]): unknown[] {
  const reader = new FrameReader();
  const values: unknown[] = [];
  for (const piece of chunks) values.push(...reader.push(piece));
  return values;
}

/** A frame around arbitrary body bytes (a well-formed length, whatever the body). */
function frameOf(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(4 + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 0);
  frame.set(body, 4);
  return frame;
}

/** Runs `action`; it either returns or throws a ProtocolError: anything else fails the test. */
function returnsOrProtocolError<T>(action: () => T): { readonly value: T } | { readonly error: ProtocolError } {
  try {
    return { value: action() };
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw new Error(`expected a ProtocolError, got ${String((error as Error)?.name)}: ${String((error as Error)?.message)}`, { cause: error });
    return { error };
  }
}

/** Feeds hostile chunks: every push and every check of what comes out returns or throws a ProtocolError. */
function survivesHostileStream(chunks: readonly Buffer[]): void {
  const reader = new FrameReader();
  for (const piece of chunks) {
    const pushed = returnsOrProtocolError(() => reader.push(piece));
    if ('error' in pushed) return;
    for (const value of pushed.value) {
      returnsOrProtocolError(() => checkAnswer(value));
      returnsOrProtocolError(() => checkPoolMessage(value));
    }
  }
}

/** After hostile input, the codec (its shared msgpack state) still decodes valid frames exactly. */
const SAMPLE: RuntimeAnswer = { kind: 'host', callId: 7, requestId: 9, op: 'put', key: 'k', payload: new Uint8Array([1, 2, 3]) };
function codecStillSound(): void {
  const [value] = new FrameReader().push(encodeFrame(SAMPLE));
  expect(normalise(checkAnswer(value))).toEqual(normalise(SAMPLE));
}

const expectProtocolError = (action: () => unknown, what: string): void => {
  expect(action, what).toThrow(ProtocolError);
};

// ---------------------------------------------------------------------------------------------

describe('sandbox protocol codec', () => {
  it('round-trips every valid PoolMessage: encodeFrame -> FrameReader (any chunking, several frames) -> checkPoolMessage', () => {
    fc.assert(
      fc.property(fc.array(poolMessageArb, { minLength: 1, maxLength: 6 }), chunkingArb, (messages, chunking) => {
        const stream = Buffer.concat(messages.map((message) => encodeFrame(message)));
        const decoded = readAll(chunk(stream, chunking)).map(checkPoolMessage);
        expect(normalise(decoded)).toEqual(normalise(messages));
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  it('round-trips every valid RuntimeAnswer: encodeFrame -> FrameReader (any chunking, several frames) -> checkAnswer', () => {
    fc.assert(
      fc.property(fc.array(answerArb, { minLength: 1, maxLength: 6 }), chunkingArb, (answers, chunking) => {
        const stream = Buffer.concat(answers.map((answer) => encodeFrame(answer)));
        const decoded = readAll(chunk(stream, chunking)).map(checkAnswer);
        expect(normalise(decoded)).toEqual(normalise(answers));
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  it('decodes frames fed one byte at a time, and a frame split anywhere in its 4-byte header', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(SMALL.pool, SMALL.answer), { minLength: 2, maxLength: 6 }), (messages) => {
        const stream = Buffer.concat(messages.map((message) => encodeFrame(message)));
        const decoded = readAll(chunk(stream, { kind: 'bytes' }));
        expect(decoded).toHaveLength(messages.length);
        const checked = decoded.map((value, i) => (['call', 'hostReply', 'abort', 'unload'].includes(messages[i]!.kind) ? checkPoolMessage(value) : checkAnswer(value)));
        expect(normalise(checked)).toEqual(normalise(messages));
      }),
      { numRuns: propertyRuns(100) },
    );
    // Each header split point, explicitly.
    const frame = encodeFrame({ kind: 'abort', callId: 42 });
    for (let split = 0; split <= 4; split++) {
      const reader = new FrameReader();
      expect(reader.push(frame.subarray(0, split))).toEqual([]);
      expect(reader.push(frame.subarray(split)).map(checkPoolMessage)).toEqual([{ kind: 'abort', callId: 42 }]);
    }
  });

  it('the two directions do not mix: a PoolMessage is no RuntimeAnswer and the reverse', () => {
    fc.assert(
      fc.property(poolMessageArb, answerArb, (message, answer) => {
        const [poolValue, answerValue] = readAll([Buffer.concat([encodeFrame(message), encodeFrame(answer)])]);
        expectProtocolError(() => checkAnswer(poolValue), `checkAnswer(${message.kind})`);
        expectProtocolError(() => checkPoolMessage(answerValue), `checkPoolMessage(${answer.kind})`);
      }),
      { numRuns: propertyRuns(100) },
    );
  });

  it('arbitrary bytes make FrameReader and the checks throw nothing but ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), chunkingArb, (bytes, chunking) => {
        survivesHostileStream(chunk(Buffer.from(bytes), chunking));
        codecStillSound();
      }),
      { numRuns: propertyRuns(1000) },
    );
  });

  it('arbitrary bytes inside well-formed frames (past the length check, into msgpack) give only ProtocolError', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 4 }), chunkingArb, (bodies, chunking) => {
        survivesHostileStream(chunk(Buffer.concat(bodies.map(frameOf)), chunking));
        codecStillSound();
      }),
      { numRuns: propertyRuns(2000) },
    );
  });

  it('msgpack bodies that look like a message (a known kind, then noise) give only ProtocolError', () => {
    // A well-formed map start with a kind, then random bytes: reaches the checks far more often than pure noise.
    const kindArb = fc.constantFrom('call', 'hostReply', 'abort', 'unload', 'host', 'log', 'result', 'loaded', 'error', 'ready');
    const packer = new Packr({ useRecords: false });
    fc.assert(
      fc.property(kindArb, fc.integer({ min: 1, max: 9 }), fc.uint8Array({ maxLength: 120 }), (kind, entries, noise) => {
        const head = packer.pack({ kind });
        // Rewrite fixmap(1) to fixmap(entries): the remaining entries come from the noise.
        head[0] = 0x80 | entries;
        survivesHostileStream([frameOf(Buffer.concat([head, noise]))]);
        codecStillSound();
      }),
      { numRuns: propertyRuns(2000) },
    );
  });

  it('arbitrary msgpack values (records, extensions, every type) give a checked message or a ProtocolError, nothing else', () => {
    const packers = [new Packr({ useRecords: false }), new Packr({ useRecords: true }), new Packr({ moreTypes: true, structuredClone: true }), new Packr({ useRecords: false, variableMapSize: true, useFloat32: 1 })];
    const valueArb = fc.anything({ withBigInt: true, withBoxedValues: true, withDate: true, withMap: true, withSet: true, withNullPrototype: true, withObjectString: true, withSparseArray: true, withTypedArray: true, maxDepth: 3 });
    fc.assert(
      fc.property(fc.nat({ max: packers.length - 1 }), valueArb, chunkingArb, (which, value, chunking) => {
        // The checks on the value itself (no codec) too.
        returnsOrProtocolError(() => checkAnswer(value));
        returnsOrProtocolError(() => checkPoolMessage(value));
        let body: Buffer;
        try {
          body = packers[which]!.pack(value);
        } catch {
          return; // not encodable by that packer (a bigint past 64 bits...): nothing to send
        }
        survivesHostileStream(chunk(frameOf(body), chunking));
        codecStillSound();
      }),
      { numRuns: propertyRuns(1000) },
    );
  });

  it('messages of a known kind whose fields are arbitrary values give only ProtocolError (or a valid message)', () => {
    const fieldArb = fc.oneof(fc.anything({ maxDepth: 2, withBigInt: true, withTypedArray: true }), idArb, SMALL.textArb(80), SMALL.bytesArb, fc.constantFrom(-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, null, true));
    const looseArb = fc.record(
      {
        kind: fc.constantFrom('call', 'hostReply', 'abort', 'unload', 'host', 'log', 'result', 'loaded', 'error', 'ready', 'other'),
        callId: fieldArb,
        requestId: fieldArb,
        functionId: fieldArb,
        code: fieldArb,
        args: fieldArb,
        timeoutMs: fieldArb,
        amount: fieldArb,
        resultBytesMax: fieldArb,
        invocation: fc.oneof(fieldArb, fc.record({ runId: fieldArb, functionName: fieldArb })),
        payload: fieldArb,
        error: fc.oneof(fieldArb, fc.record({ code: fieldArb, message: fieldArb, stack: fieldArb })),
        op: fc.oneof(fieldArb, fc.constantFrom(...HOST_OPS)),
        key: fieldArb,
        target: fieldArb,
        level: fc.oneof(fieldArb, fc.constantFrom(...LOG_LEVELS)),
        text: fieldArb,
        fields: fieldArb,
        result: fieldArb,
        loaded: fieldArb,
      },
      { requiredKeys: ['kind'] },
    );
    fc.assert(
      fc.property(looseArb, (loose) => {
        returnsOrProtocolError(() => checkAnswer(loose));
        returnsOrProtocolError(() => checkPoolMessage(loose));
        let frame: Buffer;
        try {
          frame = encodeFrame(loose as never);
        } catch {
          return;
        }
        survivesHostileStream([frame]);
      }),
      { numRuns: propertyRuns(2000) },
    );
  });

  it('a frame announcing more than FRAME_BYTES_MAX is a ProtocolError as soon as its header is in, before any body', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: FRAME_BYTES_MAX + 1, max: 0xffff_ffff }),
        fc.array(fc.oneof(SMALL.pool, SMALL.answer), { maxLength: 3 }),
        chunkingArb,
        fc.uint8Array({ maxLength: 16 }),
        (announced, before, chunking, bodyStart) => {
          const prefix = Buffer.concat(before.map((message) => encodeFrame(message)));
          const header = Buffer.alloc(4);
          header.writeUInt32BE(announced, 0);
          const stream = Buffer.concat([prefix, header, bodyStart]);
          const reader = new FrameReader();
          const headerEnd = prefix.byteLength + 4;
          let fed = 0;
          let thrown: unknown;
          let fedBeforeThrow = -1;
          for (const piece of chunk(stream, chunking)) {
            const before = fed;
            fed += piece.byteLength;
            try {
              reader.push(piece);
            } catch (error) {
              thrown = error;
              fedBeforeThrow = before;
              break;
            }
            // Every push that did not complete the header went through.
            if (fed >= headerEnd) break;
          }
          // It threw a ProtocolError, on the push that completed the header.
          expect(thrown).toBeInstanceOf(ProtocolError);
          expect(fedBeforeThrow).toBeLessThan(headerEnd);
          expect(fed).toBeGreaterThanOrEqual(headerEnd);
        },
      ),
      { numRuns: propertyRuns(500) },
    );
    // Edges: the largest accepted length only waits for its body; one more is refused, even fed bytewise.
    const header = (length: number): Buffer => {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(length, 0);
      return bytes;
    };
    expect(new FrameReader().push(header(FRAME_BYTES_MAX))).toEqual([]);
    for (const length of [FRAME_BYTES_MAX + 1, 0xffff_ffff]) {
      const reader = new FrameReader();
      const bytes = header(length);
      for (let i = 0; i < 3; i++) expect(reader.push(bytes.subarray(i, i + 1))).toEqual([]);
      expectProtocolError(() => reader.push(bytes.subarray(3, 4)), `announced ${length}`);
    }
  });

  it('encodeFrame refuses a message larger than FRAME_BYTES_MAX with a ProtocolError', () => {
    expectProtocolError(() => encodeFrame({ kind: 'result', callId: 1, result: new Uint8Array(FRAME_BYTES_MAX) }), 'a result of FRAME_BYTES_MAX bytes');
  });

  it('an empty frame, a frame of two values, and a truncated value are ProtocolErrors', () => {
    expectProtocolError(() => new FrameReader().push(frameOf(new Uint8Array(0))), 'empty body');
    const two = Buffer.concat([new Packr({ useRecords: false }).pack({ kind: 'ready' }), new Packr({ useRecords: false }).pack({ kind: 'ready' })]);
    expectProtocolError(() => new FrameReader().push(frameOf(two)), 'two values');
    const one = new Packr({ useRecords: false }).pack({ kind: 'log', callId: 1, level: 'log', text: 'hello' });
    expectProtocolError(() => new FrameReader().push(frameOf(one.subarray(0, one.byteLength - 2))), 'truncated');
  });
});

// ---------------------------------------------------------------------------------------------
// Wrong fields, one at a time.

/** A bad value; `wire: false` when msgpack would turn it into a valid one (a bigint into a number, a Uint16Array into bytes). */
interface Bad {
  readonly label: string;
  readonly value: unknown;
  readonly wire?: boolean;
}
const MISSING: Bad = { label: 'missing', value: undefined };
const bad = (label: string, value: unknown, wire = true): Bad => ({ label, value, wire });
const NOT_A_STRING = [bad('number', 1), bad('boolean', true), bad('array', ['a']), bad('map', { a: 'b' }), bad('bytes', new Uint8Array([97]))];
const BAD: Record<string, readonly Bad[]> = {
  id: [MISSING, bad('null', null), bad('negative', -1), bad('negative float', -0.5), bad('float', 1.5), bad('NaN', Number.NaN), bad('Infinity', Number.POSITIVE_INFINITY), bad('-Infinity', Number.NEGATIVE_INFINITY), bad('2^53 (unsafe)', 2 ** 53), bad('1e300', 1e300), bad('string', '1'), bad('empty string', ''), bad('boolean', true), bad('array', [1]), bad('map', { n: 1 }), bad('bytes', new Uint8Array([1])), bad('bigint', 1n, false)],
  text: [MISSING, bad('null', null), bad('too long', 'x'.repeat(TEXT_FIELD_MAX + 1)), ...NOT_A_STRING],
  text64: [MISSING, bad('null', null), bad('too long', 'E'.repeat(65)), ...NOT_A_STRING],
  optText: [bad('too long', 't'.repeat(TEXT_FIELD_MAX + 1)), ...NOT_A_STRING],
  code: [bad('too long', 'c'.repeat(CODE_BYTES_MAX + 1)), ...NOT_A_STRING],
  optBytes: [bad('string', 'abc'), bad('number', 1), bad('array of numbers', [1, 2, 3]), bad('map', { 0: 1 }), bad('boolean', true), bad('Uint16Array', new Uint16Array([1]), false), bad('ArrayBuffer', new ArrayBuffer(2), false), bad('DataView', new DataView(new ArrayBuffer(2)), false)],
  bytes: [MISSING, bad('null', null), bad('string', 'abc'), bad('number', 1), bad('array of numbers', [1, 2, 3]), bad('map', { 0: 1 }), bad('Uint16Array', new Uint16Array([1]), false)],
  bool: [MISSING, bad('null', null), bad('string', 'true'), bad('number 1', 1), bad('number 0', 0), bad('array', [true])],
  object: [MISSING, bad('null', null), bad('string', 'x'), bad('number', 1), bad('boolean', true), bad('array', [])],
  optObject: [bad('string', 'x'), bad('number', 1), bad('boolean', true), bad('array', [{ code: 'C', message: 'm' }])],
  op: [MISSING, bad('null', null), bad('unknown op', 'eval'), bad('upper case', 'GET'), bad('empty', ''), bad('inherited name', 'constructor'), bad('__proto__', '__proto__'), bad('toString', 'toString'), bad('number', 1), bad('array', ['get'])],
  level: [MISSING, bad('null', null), bad('unknown level', 'trace'), bad('fatal', 'fatal'), bad('upper case', 'LOG'), bad('empty', ''), bad('inherited name', 'hasOwnProperty'), bad('number', 30), bad('array', ['log'])],
  duration: [bad('negative', -1), bad('negative fraction', -0.001), bad('NaN', Number.NaN), bad('Infinity', Number.POSITIVE_INFINITY), bad('string', '5'), bad('boolean', true), bad('array', [5]), bad('map', { ms: 5 })],
  kind: [MISSING, bad('null', null), bad('unknown', 'exec'), bad('case', 'Call'), bad('padded', 'ready '), bad('empty', ''), bad('inherited name', 'constructor'), bad('__proto__', '__proto__'), bad('number', 1), bad('array', ['ready'])],
};

interface Field {
  readonly path: readonly string[];
  readonly type: keyof typeof BAD;
}
const f = (path: string, type: keyof typeof BAD): Field => ({ path: path.split('.'), type });

/** Every field of every message kind, with a valid sample of it and its type. */
const POOL_FIELDS: Record<PoolMessage['kind'], { readonly sample: PoolMessage; readonly fields: readonly Field[] }> = {
  call: {
    sample: { kind: 'call', callId: 1, functionId: 'f@1', code: 'module.exports = () => 1;', args: new Uint8Array([0x90]), timeoutMs: 1000, resultBytesMax: 1024, invocation: { runId: 'r', functionName: 'f' } },
    fields: [f('kind', 'kind'), f('callId', 'id'), f('functionId', 'text'), f('code', 'code'), f('args', 'optBytes'), f('timeoutMs', 'id'), f('resultBytesMax', 'id'), f('invocation', 'object'), f('invocation.runId', 'text'), f('invocation.functionName', 'text')],
  },
  hostReply: {
    sample: { kind: 'hostReply', requestId: 3, payload: new Uint8Array([1]), error: { code: 'KVS_BUSY', message: 'busy' } },
    fields: [f('kind', 'kind'), f('requestId', 'id'), f('payload', 'optBytes'), f('error', 'optObject'), f('error.code', 'text64'), f('error.message', 'text')],
  },
  abort: { sample: { kind: 'abort', callId: 1 }, fields: [f('kind', 'kind'), f('callId', 'id')] },
  unload: { sample: { kind: 'unload', functionId: 'f@1' }, fields: [f('kind', 'kind'), f('functionId', 'text')] },
};
const ANSWER_FIELDS: Record<RuntimeAnswer['kind'], { readonly sample: RuntimeAnswer; readonly fields: readonly Field[] }> = {
  host: {
    sample: { kind: 'host', callId: 1, requestId: 2, op: 'put', key: 'k', target: 't', timeoutMs: 5, payload: new Uint8Array([1]) },
    fields: [f('kind', 'kind'), f('callId', 'id'), f('requestId', 'id'), f('op', 'op'), f('key', 'optText'), f('target', 'optText'), f('timeoutMs', 'duration'), f('payload', 'optBytes')],
  },
  log: { sample: { kind: 'log', callId: 1, level: 'warn', text: 'hello', fields: '{"a":1}' }, fields: [f('kind', 'kind'), f('callId', 'id'), f('level', 'level'), f('text', 'text'), f('fields', 'optText')] },
  result: { sample: { kind: 'result', callId: 1, result: new Uint8Array([1]) }, fields: [f('kind', 'kind'), f('callId', 'id'), f('result', 'bytes')] },
  loaded: { sample: { kind: 'loaded', callId: 1 }, fields: [f('kind', 'kind'), f('callId', 'id')] },
  error: {
    sample: { kind: 'error', callId: 1, loaded: true, error: { code: 'EXEC_USER_ERROR', message: 'Error: x', stack: 'at f' } },
    fields: [f('kind', 'kind'), f('callId', 'id'), f('loaded', 'bool'), f('error', 'object'), f('error.code', 'text64'), f('error.message', 'text'), f('error.stack', 'optText')],
  },
  ready: { sample: { kind: 'ready' }, fields: [f('kind', 'kind')] },
};

/** A copy of `message` with the field at `path` set to `value` (removed for undefined). */
function withField(message: object, path: readonly string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(message) as Record<string, unknown>;
  let parent = copy;
  for (const step of path.slice(0, -1)) {
    if (typeof parent[step] !== 'object' || parent[step] === null) parent[step] = { code: 'C', message: 'm' };
    parent = parent[step] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) delete parent[last];
  else parent[last] = value;
  return copy;
}

/** The mutated message is a ProtocolError for `check`, as a value and (where msgpack keeps it bad) through a frame. */
function expectRefused(check: (value: unknown) => unknown, message: Record<string, unknown>, badValue: Bad, what: string): void {
  expectProtocolError(() => check(message), `${what} (as a value)`);
  if (badValue.wire === false) return;
  const values = new FrameReader().push(encodeFrame(message as never));
  expect(values, what).toHaveLength(1);
  expectProtocolError(() => check(values[0]), `${what} (through a frame)`);
}

const poolCases = Object.entries(POOL_FIELDS).flatMap(([kind, { sample, fields }]) => fields.flatMap((field) => BAD[field.type]!.map((badValue) => ({ kind, sample, field, badValue }))));
const answerCases = Object.entries(ANSWER_FIELDS).flatMap(([kind, { sample, fields }]) => fields.flatMap((field) => BAD[field.type]!.map((badValue) => ({ kind, sample, field, badValue }))));

describe('sandbox protocol checks: each field with a wrong type is a ProtocolError', () => {
  it('the samples themselves are valid (so each refusal below is the one bad field)', () => {
    for (const { sample } of Object.values(POOL_FIELDS)) expect(normalise(checkPoolMessage(new FrameReader().push(encodeFrame(sample))[0]))).toEqual(normalise(sample));
    for (const { sample } of Object.values(ANSWER_FIELDS)) expect(normalise(checkAnswer(new FrameReader().push(encodeFrame(sample))[0]))).toEqual(normalise(sample));
  });

  it.each(poolCases.map((c) => [`${c.kind}.${c.field.path.join('.')} ${c.badValue.label}`, c] as const))('checkPoolMessage refuses %s', (what, { sample, field, badValue }) => {
    expectRefused(checkPoolMessage, withField(sample, field.path, badValue.value), badValue, what);
  });

  it.each(answerCases.map((c) => [`${c.kind}.${c.field.path.join('.')} ${c.badValue.label}`, c] as const))('checkAnswer refuses %s', (what, { sample, field, badValue }) => {
    expectRefused(checkAnswer, withField(sample, field.path, badValue.value), badValue, what);
  });

  it('on random valid messages, any one field made wrong is refused', () => {
    const poolCase = fc.constantFrom(...poolCases.filter((c) => c.field.type !== 'code'));
    const answerCase = fc.constantFrom(...answerCases);
    const arbitraries = SMALL.byKind;
    fc.assert(
      fc.property(
        fc.oneof(
          poolCase.chain((c) => arbitraries[c.kind]!.map((message) => ({ check: checkPoolMessage as (value: unknown) => unknown, c, message }))),
          answerCase.chain((c) => arbitraries[c.kind]!.map((message) => ({ check: checkAnswer as (value: unknown) => unknown, c, message }))),
        ),
        ({ check, c, message }) => {
          expectRefused(check, withField(message, c.field.path, c.badValue.value), c.badValue, `${c.kind}.${c.field.path.join('.')} ${c.badValue.label}`);
        },
      ),
      { numRuns: propertyRuns(500) },
    );
  });

  it('a message that is not a map is refused by both checks', () => {
    for (const value of [null, undefined, 0, 1, 'call', true, [], [{ kind: 'ready' }], new Uint8Array([1])]) {
      expectProtocolError(() => checkAnswer(value), `checkAnswer(${String(value)})`);
      expectProtocolError(() => checkPoolMessage(value), `checkPoolMessage(${String(value)})`);
    }
  });

  it('unknown fields (own keys named __proto__ or constructor included) are dropped, never carried into the checked message', () => {
    const hostile = JSON.parse('{"kind":"abort","callId":1,"__proto__":{"polluted":1},"constructor":"x","extra":[1]}') as unknown;
    const checked = checkPoolMessage(hostile);
    expect(checked).toEqual({ kind: 'abort', callId: 1 });
    expect(Object.getPrototypeOf(checked)).toBe(Object.prototype);
    expect((checked as unknown as Record<string, unknown>)['polluted']).toBeUndefined();
    const through = checkAnswer(new FrameReader().push(encodeFrame(JSON.parse('{"kind":"loaded","callId":2,"__proto__":{"polluted":1},"extra":true}') as never))[0]);
    expect(through).toEqual({ kind: 'loaded', callId: 2 });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('sandbox protocol: text that is not well-formed Unicode', () => {
  it('a lone surrogate in a text field is refused or arrives unchanged, never silently replaced (a ctx key would change)', () => {
    for (const key of ['\ud800', 'a\udc00b', 'x\ud83d']) {
      const ask: RuntimeAnswer = { kind: 'host', callId: 1, requestId: 1, op: 'put', key, payload: new Uint8Array([1]) };
      const outcome = returnsOrProtocolError(() => checkAnswer(new FrameReader().push(encodeFrame(ask))[0]));
      if ('value' in outcome) expect((outcome.value as { key?: string }).key, `key ${JSON.stringify(key)}`).toBe(key);
    }
  });
});
