import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError, isLfaasError } from '../lattices/index.js';
import { encodeValue } from '../protocol/index.js';
import { answerFormat, checkValue, encodeAnswer, parseBody, readBody, requestFormat, toJsonValue } from './codec.js';
import { HTTP_STATUS_OF_CODE, errorAnswer, httpStatusOf } from './errors.js';

const codeOf = (work: () => unknown): string | undefined => {
  try {
    work();
    return undefined;
  } catch (error) {
    return isLfaasError(error) ? error.code : `not typed: ${String(error)}`;
  }
};

describe('ingress codec', () => {
  it('negotiates JSON by default and msgpack on request', () => {
    expect(requestFormat(undefined)).toBe('json');
    expect(requestFormat('application/json; charset=utf-8')).toBe('json');
    expect(requestFormat('application/x-www-form-urlencoded')).toBe('json');
    expect(requestFormat('Application/MsgPack')).toBe('msgpack');
    expect(codeOf(() => requestFormat('application/vnd.lfaas.lattice'))).toBe(ErrorCode.PROTO_MALFORMED);
    expect(requestFormat('application/vnd.lfaas.lattice', true)).toBe('lattice');
    expect(answerFormat(undefined)).toBe('json');
    expect(answerFormat('application/msgpack, application/json')).toBe('msgpack');
    expect(answerFormat('application/json, application/msgpack')).toBe('json');
    expect(answerFormat('text/html')).toBe('json');
  });

  it('refuses deep nesting, non-finite numbers and __proto__ keys', () => {
    expect(codeOf(() => checkValue(JSON.parse(`${'['.repeat(65)}${']'.repeat(65)}`), 64))).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(codeOf(() => checkValue(JSON.parse(`${'['.repeat(64)}${']'.repeat(64)}`), 64))).toBeUndefined();
    expect(codeOf(() => parseBody(Buffer.from('[1e999]'), 'json', 64))).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(codeOf(() => parseBody(Buffer.from('{"__proto__":1}'), 'json', 64))).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(codeOf(() => parseBody(Buffer.from('{'), 'json', 64))).toBe(ErrorCode.PROTO_MALFORMED);
    expect(parseBody(new Uint8Array(0), 'json', 64)).toBeUndefined();
    expect(parseBody(encodeValue([1, 'a']), 'msgpack', 64)).toEqual([1, 'a']);
  });

  test.prop([fc.uint8Array({ maxLength: 512 }), fc.constantFrom('json' as const, 'msgpack' as const)])('any bytes parse, or fail with a typed error', (bytes, format) => {
    const code = codeOf(() => parseBody(bytes, format, 64));
    expect(code === undefined || !code.startsWith('not typed')).toBe(true);
  });

  it('gives JSON a form of every user value', () => {
    expect(toJsonValue({ a: undefined, b: 2n ** 70n, c: 5n, d: new Uint8Array([255]), e: new Date(0), f: [Number.NaN] })).toEqual({ a: null, b: '1180591620717411303424', c: 5, d: { $base64: '/w==' }, e: '1970-01-01T00:00:00.000Z', f: [null] });
    expect(encodeAnswer([1], 'json')).toEqual({ body: '[1]', contentType: 'application/json; charset=utf-8' });
    expect(encodeAnswer([1], 'msgpack').contentType).toBe('application/msgpack');
  });

  it('reads a body up to its limit, and refuses one beyond with 413', async () => {
    const request = (body: string, headers: Record<string, string> = {}): Request => new Request('http://x/', { method: 'POST', body, headers });
    expect(Buffer.from(await readBody(request('abc'), 3)).toString()).toBe('abc');
    await expect(readBody(request('abcd'), 3)).rejects.toMatchObject({ code: ErrorCode.PROTO_TOO_LARGE, status: 413 });
    await expect(readBody(request('a', { 'content-length': '99999999999999999999' }), 3)).rejects.toMatchObject({ status: 413 });
  });
});

describe('ingress errors', () => {
  it('maps every code to a status, a missing or bad token to 401 and a refusal to 403', () => {
    for (const status of Object.values(HTTP_STATUS_OF_CODE)) expect(status >= 400 && status < 600).toBe(true);
    expect(httpStatusOf(new LfaasError(ErrorCode.UNAUTHORISED, 'token refused: it expired'))).toBe(401);
    expect(httpStatusOf(new LfaasError(ErrorCode.UNAUTHORISED, '"bob/x" is not in the namespace of alice'))).toBe(403);
    const busy = errorAnswer(new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'full', { retryAfterMs: 1500 }));
    expect(busy).toMatchObject({ status: 503, retryAfterSeconds: 2, body: { error: { code: 'SCHED_NO_CAPACITY', retryable: true, retryAfterMs: 1500 } } });
    expect(errorAnswer(new Error('plain')).body.error.code).toBe(ErrorCode.INTERNAL);
  });
});
