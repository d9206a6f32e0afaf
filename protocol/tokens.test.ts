/**
 * Owner tokens: what one cluster signs, it verifies, with the claims intact; anything else
 * (another cluster's signature, altered claims, a truncation, an expiry, garbage) is refused
 * UNAUTHORISED with a reason, and nothing but that is ever thrown.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError, isWellFormedString } from '../lattices/index.js';
import { RIGHTS, TokenVerifier, createToken, generateTokenKeys, tokenKeysFromPem, tokenKeysToPem } from './tokens.js';
import type { Right } from './tokens.js';

const cluster = generateTokenKeys();
const other = generateTokenKeys();
const NOW = 1_800_000_000;
const verifier = (keys = cluster, now = NOW) => new TokenVerifier({ publicKey: keys.publicKey }, () => now);

function refusal(run: () => unknown): LfaasError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LfaasError);
    expect((error as LfaasError).code).toBe(ErrorCode.UNAUTHORISED);
    return error as LfaasError;
  }
  throw new Error('not refused');
}

const claimsArbitrary = fc.record({
  owner: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/),
  rights: fc.uniqueArray(fc.constantFrom(...RIGHTS), { minLength: 1 }),
  keyPrefixes: fc.option(fc.array(fc.string({ minLength: 1, maxLength: 30 }).filter((s) => isWellFormedString(s)), { maxLength: 5 }), { nil: undefined }),
  functions: fc.option(fc.array(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), { maxLength: 5 }), { nil: undefined }),
  ttlSeconds: fc.integer({ min: 1, max: 10 ** 8 }),
});

describe('owner tokens', () => {
  test.prop([claimsArbitrary])('a token verifies to the claims it was made with', (claims) => {
    const token = createToken(cluster, { ...claims, nowSeconds: NOW });
    const verified = verifier().verify(token);
    expect(verified).toMatchObject({ owner: claims.owner, rights: claims.rights, issuedAt: NOW, expiresAt: NOW + claims.ttlSeconds });
    expect(verified.keyPrefixes).toEqual(claims.keyPrefixes);
    expect(verified.functions).toEqual(claims.functions);
  });

  test.prop([claimsArbitrary, fc.nat(), fc.string({ maxLength: 8 })])('a token altered anywhere is refused, and only ever UNAUTHORISED', (claims, at, insert) => {
    const token = createToken(cluster, { ...claims, nowSeconds: NOW });
    const position = at % token.length;
    const altered = token.slice(0, position) + insert + token.slice(position + 1);
    if (altered === token) return;
    refusal(() => verifier().verify(altered));
    refusal(() => verifier().verify(token.slice(0, position)));
  });

  it('refuses a token signed by another cluster, an expired one, none, garbage and a huge one', () => {
    const mine = createToken(cluster, { owner: 'alice', rights: ['call'], ttlSeconds: 60, nowSeconds: NOW });
    const theirs = createToken(other, { owner: 'alice', rights: ['call'], ttlSeconds: 60, nowSeconds: NOW });
    expect(refusal(() => verifier().verify(theirs)).message).toContain('another cluster');
    expect(verifier(other).verify(theirs).owner).toBe('alice');
    expect(refusal(() => verifier(cluster, NOW + 60).verify(mine)).message).toContain('expired');
    expect(refusal(() => verifier().verify('')).message).toContain('none was presented');
    expect(refusal(() => verifier().verify('Bearer abc')).message).toContain('not an lfaas1 token');
    expect(refusal(() => verifier().verify(`lfaas1.${'A'.repeat(5000)}`)).message).toContain('longer than');
    // A valid signature over claims that do not hold (made by this cluster's key, by hand).
    const [prefix] = mine.split('.');
    refusal(() => verifier().verify(`${prefix}.e30.${mine.split('.')[2]}`));
  });

  it('keeps a verified token until it expires, then refuses it', () => {
    let now = NOW;
    const cached = new TokenVerifier({ publicKey: cluster.publicKey }, () => now);
    const token = createToken(cluster, { owner: 'bob', rights: ['read', 'write'], ttlSeconds: 10, nowSeconds: NOW });
    expect(cached.verify(token).rights).toEqual(['read', 'write']);
    now = NOW + 9;
    expect(cached.verify(token).owner).toBe('bob');
    now = NOW + 10;
    expect(refusal(() => cached.verify(token)).message).toContain('expired');
  });

  it('refuses claims that do not hold when a token is made', () => {
    refusal(() => createToken(cluster, { owner: 'Not An Owner', rights: ['call'], ttlSeconds: 60 }));
    refusal(() => createToken(cluster, { owner: 'alice', rights: [], ttlSeconds: 60 }));
    refusal(() => createToken(cluster, { owner: 'alice', rights: ['root' as Right], ttlSeconds: 60 }));
    refusal(() => createToken(cluster, { owner: 'alice', rights: ['call'], ttlSeconds: 0 }));
    refusal(() => createToken({ publicKey: cluster.publicKey }, { owner: 'alice', rights: ['call'], ttlSeconds: 60 }));
  });

  it('token keys survive their PEM form', () => {
    const pem = tokenKeysToPem(cluster);
    const loaded = tokenKeysFromPem(pem.publicKey, pem.privateKey);
    const token = createToken(loaded, { owner: 'carol', rights: ['admin'], ttlSeconds: 60 });
    expect(new TokenVerifier(tokenKeysFromPem(pem.publicKey)).verify(token).owner).toBe('carol');
  });
});
