/**
 * Owner tokens: what a client presents to say who it is (an owner, a tenant) and what it may do.
 *
 * A token is `lfaas1.<claims>.<signature>`: the claims as JSON in base64url, and an Ed25519
 * signature (node:crypto) over `lfaas1.<claims>` by the cluster's token key, made by
 * `lfaas token create` (or `lfaas keys init` for the first admin token). Verification needs only
 * the cluster's public token key; a token signed by another cluster's key, forged, truncated,
 * expired or not yet valid is refused UNAUTHORISED with the reason. A verifier caches what it
 * verified (bounded; an entry lasts until its token expires).
 *
 * Claims: the owner, its rights (`deploy`, `call`, `read`, `write`, `admin`), optionally the key
 * prefixes and function names it is restricted to (within its own namespace), issue and expiry
 * times (seconds), and a random id.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ErrorCode, LfaasError, isWellFormedString } from '../lattices/index.js';

export const RIGHTS = ['deploy', 'call', 'read', 'write', 'admin'] as const;
export type Right = (typeof RIGHTS)[number];

/** An owner's name: also the first segment of its namespace. */
export const OWNER_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** The platform's own namespace (`lfaas/...`, the system keys): no owner may be called so. */
export const RESERVED_OWNER = 'lfaas';
const PREFIX = 'lfaas1.';
/** A token longer than this is refused before it is parsed. */
export const TOKEN_LENGTH_MAX = 4096;
const LIST_MAX = 64;
const ITEM_LENGTH_MAX = 256;

export interface TokenClaims {
  readonly owner: string;
  readonly rights: readonly Right[];
  /** Key prefixes (within the owner's namespace) it may read or write; absent: all of the owner's keys. */
  readonly keyPrefixes?: readonly string[];
  /** Function (and DAG) names it may deploy or call; absent: all of the owner's. */
  readonly functions?: readonly string[];
  /** Rights in other owners' namespaces, each optionally narrowed like the token's own. */
  readonly grants?: readonly Grant[];
  /** Seconds since the epoch. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly id: string;
}

/** Rights in another owner's namespace (owner-access.ts). */
export interface Grant {
  readonly owner: string;
  readonly rights: readonly Exclude<Right, 'admin'>[];
  readonly keyPrefixes?: readonly string[];
  readonly functions?: readonly string[];
}

/** The cluster's token key pair (Ed25519). */
export interface TokenKeys {
  readonly privateKey?: KeyObject;
  readonly publicKey: KeyObject;
  /** Keys rotated out and still accepted (tokens they signed stay valid until they expire). */
  readonly previousKeys?: readonly KeyObject[];
}

/** A token key pair that can sign. */
export type SigningTokenKeys = TokenKeys & { readonly privateKey: KeyObject };

export function generateTokenKeys(): SigningTokenKeys {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey };
}

/** PEM texts of a token key pair (for key files). */
export function tokenKeysToPem(keys: SigningTokenKeys): { privateKey: string; publicKey: string } {
  return { privateKey: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicKey: keys.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

/**
 * Token keys from PEM texts: `publicPem` holds one or more public keys, the current one first
 * (then those rotated out and still accepted).
 */
export function tokenKeysFromPem(publicPem: string, privatePem?: string): TokenKeys {
  const blocks = publicPem.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new LfaasError(ErrorCode.UNAUTHORISED, 'no token public key (a PEM PUBLIC KEY block) was found');
  const [publicKey, ...previousKeys] = blocks.map((block) => {
    const key = createPublicKey(block);
    if (key.asymmetricKeyType !== 'ed25519') throw new LfaasError(ErrorCode.UNAUTHORISED, 'the token public key is not an Ed25519 key');
    return key;
  });
  const withPrevious = previousKeys.length === 0 ? {} : { previousKeys };
  if (privatePem === undefined) return { publicKey: publicKey!, ...withPrevious };
  const privateKey = createPrivateKey(privatePem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new LfaasError(ErrorCode.UNAUTHORISED, 'the token private key is not an Ed25519 key');
  return { privateKey, publicKey: publicKey!, ...withPrevious };
}

const refuse = (why: string): LfaasError => new LfaasError(ErrorCode.UNAUTHORISED, `token refused: ${why}`);

function checkList(name: string, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > LIST_MAX || !value.every((item) => typeof item === 'string' && item.length > 0 && item.length <= ITEM_LENGTH_MAX && isWellFormedString(item))) throw refuse(`${name} must be a list of at most ${LIST_MAX} non-empty strings`);
  return value as string[];
}

function checkRights(value: unknown, allowed: readonly string[]): Right[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > allowed.length || !value.every((right) => allowed.includes(right)) || new Set(value).size !== value.length) throw refuse(`rights must be some of ${allowed.join(', ')}`);
  return value as Right[];
}

function checkGrants(value: unknown, owner: string): Grant[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > LIST_MAX) throw refuse(`grants must be a list of at most ${LIST_MAX}`);
  return value.map((item: unknown) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw refuse('a grant is not an object');
    const grant = item as Record<string, unknown>;
    if (typeof grant['owner'] !== 'string' || !OWNER_PATTERN.test(grant['owner']) || grant['owner'] === owner) throw refuse(`a grant's owner must match ${OWNER_PATTERN} and be another owner`);
    const rights = checkRights(grant['rights'], RIGHTS.filter((right) => right !== 'admin')) as Grant['rights'];
    const keyPrefixes = checkList('grant keyPrefixes', grant['keyPrefixes']);
    const functions = checkList('grant functions', grant['functions']);
    return { owner: grant['owner'], rights, ...(keyPrefixes === undefined ? {} : { keyPrefixes }), ...(functions === undefined ? {} : { functions }) };
  });
}

/** Checks claims (from a caller or a decoded token); throws UNAUTHORISED naming the problem. */
export function checkClaims(value: unknown): TokenClaims {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw refuse('its claims are not an object');
  const claims = value as Record<string, unknown>;
  if (typeof claims['owner'] !== 'string' || !OWNER_PATTERN.test(claims['owner'])) throw refuse(`owner must match ${OWNER_PATTERN}`);
  if (claims['owner'] === RESERVED_OWNER) throw refuse(`${RESERVED_OWNER} is the platform's namespace (system keys), no owner's`);
  const rights = checkRights(claims['rights'], RIGHTS);
  const issuedAt = claims['issuedAt'];
  const expiresAt = claims['expiresAt'];
  if (!Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt) || (expiresAt as number) <= (issuedAt as number)) throw refuse('issuedAt and expiresAt must be whole seconds, expiry after issue');
  if (typeof claims['id'] !== 'string' || !/^[A-Za-z0-9_-]{8,64}$/.test(claims['id'])) throw refuse('id must be 8-64 base64url characters');
  const keyPrefixes = checkList('keyPrefixes', claims['keyPrefixes']);
  const functions = checkList('functions', claims['functions']);
  const grants = checkGrants(claims['grants'], claims['owner']);
  return {
    owner: claims['owner'],
    rights,
    ...(keyPrefixes === undefined ? {} : { keyPrefixes }),
    ...(functions === undefined ? {} : { functions }),
    ...(grants === undefined ? {} : { grants }),
    issuedAt: issuedAt as number,
    expiresAt: expiresAt as number,
    id: claims['id'],
  };
}

/** A new token for `claims` (id and times filled in), signed with the cluster's private token key. */
export function createToken(keys: TokenKeys, claims: { owner: string; rights: readonly Right[]; keyPrefixes?: readonly string[] | undefined; functions?: readonly string[] | undefined; grants?: readonly Grant[] | undefined; ttlSeconds: number; nowSeconds?: number }): string {
  if (keys.privateKey === undefined) throw new LfaasError(ErrorCode.UNAUTHORISED, 'creating a token needs the cluster\'s private token key');
  const issuedAt = claims.nowSeconds ?? Math.floor(Date.now() / 1000);
  const checked = checkClaims({
    owner: claims.owner,
    rights: [...claims.rights],
    ...(claims.keyPrefixes === undefined ? {} : { keyPrefixes: [...claims.keyPrefixes] }),
    ...(claims.functions === undefined ? {} : { functions: [...claims.functions] }),
    ...(claims.grants === undefined ? {} : { grants: claims.grants.map((grant) => ({ ...grant })) }),
    issuedAt,
    expiresAt: issuedAt + Math.floor(claims.ttlSeconds),
    id: randomBytes(12).toString('base64url'),
  });
  const body = `${PREFIX}${Buffer.from(JSON.stringify(checked)).toString('base64url')}`;
  return `${body}.${sign(null, Buffer.from(body), keys.privateKey).toString('base64url')}`;
}

/** Verifies tokens against one cluster's public token key, caching what it verified. */
export class TokenVerifier {
  private readonly cache = new Map<string, TokenClaims>();

  constructor(
    private readonly keys: TokenKeys,
    private readonly nowSeconds: () => number = () => Date.now() / 1000,
    private readonly cacheMax = 10_000,
    /** Ids of tokens revoked before their expiry (`lfaas token revoke`). */
    private readonly revokedIds: ReadonlySet<string> = new Set(),
  ) {}

  /** The claims of `token`; throws UNAUTHORISED with the reason it is refused. */
  verify(token: string): TokenClaims {
    const now = this.nowSeconds();
    const cached = this.cache.get(token);
    if (cached !== undefined) {
      if (now < cached.expiresAt) return cached;
      this.cache.delete(token);
      throw refuse(`it expired at ${new Date(cached.expiresAt * 1000).toISOString()}`);
    }
    if (token.length === 0) throw refuse('none was presented');
    if (token.length > TOKEN_LENGTH_MAX) throw refuse(`it is longer than ${TOKEN_LENGTH_MAX} characters`);
    if (!token.startsWith(PREFIX)) throw refuse('it is not an lfaas1 token');
    const dot = token.lastIndexOf('.');
    if (dot <= PREFIX.length) throw refuse('it has no signature');
    const body = token.slice(0, dot);
    const signature = token.slice(dot + 1);
    const encoded = body.slice(PREFIX.length);
    if (!/^[A-Za-z0-9_-]+$/.test(encoded) || !/^[A-Za-z0-9_-]{86}$/.test(signature)) throw refuse('it is malformed');
    const signed = Buffer.from(body);
    const signatureBytes = Buffer.from(signature, 'base64url');
    const keys = [this.keys.publicKey, ...(this.keys.previousKeys ?? [])];
    if (!keys.some((key) => verify(null, signed, key, signatureBytes))) throw refuse('its signature is not this cluster\'s (forged, altered, or signed by another cluster)');
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
    } catch {
      throw refuse('its claims are not JSON');
    }
    const claims = checkClaims(parsed);
    if (now >= claims.expiresAt) throw refuse(`it expired at ${new Date(claims.expiresAt * 1000).toISOString()}`);
    if (now + 60 < claims.issuedAt) throw refuse('it is issued in the future');
    if (this.revokedIds.has(claims.id)) throw refuse(`it was revoked (id ${claims.id})`);
    if (this.cache.size >= this.cacheMax) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, claims);
    return claims;
  }
}

/**
 * The claims a token says it has, read without verifying it (a client learning its own owner and
 * rights); undefined when it is not a readable token. Never use it to decide access.
 */
export function unverifiedClaims(token: string): TokenClaims | undefined {
  if (!token.startsWith(PREFIX) || token.length > TOKEN_LENGTH_MAX) return undefined;
  const encoded = token.slice(PREFIX.length, token.lastIndexOf('.'));
  try {
    return checkClaims(JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')));
  } catch {
    return undefined;
  }
}

/**
 * The token a client presents: the one given, else the environment's `LFAAS_TOKEN`; an empty
 * string means none (members send none).
 */
export function clientToken(given: string | undefined): string | undefined {
  const token = given ?? process.env['LFAAS_TOKEN']?.trim();
  return token === undefined || token === '' ? undefined : token;
}
