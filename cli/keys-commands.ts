/**
 * `lfaas keys`: a cluster's keys folder. `init` makes one (a key pair per role and the member
 * list), `add` makes another member's key pair and lists it, `revoke` takes a member off the list
 * (its key is refused from then on, handshakes included). Running processes re-read the list
 * within a second. Secret keys are written with mode 0600 and never printed.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RIGHTS, ROLES, createToken, ensureKeyPair, generateTokenKeys, keyText, readKeyPair, readMembers, tokenKeysFromPem, tokenKeysToPem, unverifiedClaims, writeMembers } from '../protocol/index.js';
import { TOKEN_PUBLIC_FILE, TOKEN_REVOKED_FILE, readRevokedTokenIds } from './token-trust.js';
import type { Grant, MembersDocument, Right, Role, SigningTokenKeys, TokenKeys } from '../protocol/index.js';

/** The cluster's token signing key (private, where tokens are made) and its public half (every role). */
export const TOKEN_PRIVATE_FILE = 'token-signing.key';
/** The first admin token, made with the folder. */
export const ADMIN_TOKEN_FILE = 'admin.token';
const ADMIN_TOKEN_TTL_SECONDS = 365 * 24 * 3600;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Makes `dir` a keys folder: one key pair per role (`<role>.key`) and members.json listing them. Keeps what is there. */
export function keysInit(dir: string): MembersDocument {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const existing = existsSync(join(dir, 'members.json')) ? readMembers(dir) : undefined;
  const members = {} as Record<Role, string[]>;
  for (const role of ROLES) {
    const key = keyText(ensureKeyPair(dir, role).publicKey);
    const listed = existing?.members[role] ?? [];
    members[role] = listed.includes(key) || existing?.revoked.includes(key) === true ? [...listed] : [...listed, key];
  }
  const doc: MembersDocument = { version: 1, members, revoked: existing?.revoked ?? [] };
  writeMembers(dir, doc);
  ensureTokenKeys(dir);
  return doc;
}

/** The token key pair of a keys folder, made on first use; and the first admin token with it. */
function ensureTokenKeys(dir: string): void {
  if (existsSync(join(dir, TOKEN_PUBLIC_FILE))) return;
  writeTokenKeys(dir, generateTokenKeys(), '');
}

/** Writes a signing key, the public keys (it, then `previousPem`) and an admin token made with it. */
function writeTokenKeys(dir: string, keys: SigningTokenKeys, previousPem: string): void {
  const pem = tokenKeysToPem(keys);
  writeFileSync(join(dir, TOKEN_PRIVATE_FILE), pem.privateKey, { mode: 0o600 });
  chmodSync(join(dir, TOKEN_PRIVATE_FILE), 0o600);
  writeFileSync(join(dir, TOKEN_PUBLIC_FILE), `${pem.publicKey}${previousPem}`, { mode: 0o644 });
  const admin = createToken(keys, { owner: 'admin', rights: RIGHTS, ttlSeconds: ADMIN_TOKEN_TTL_SECONDS });
  writeFileSync(join(dir, ADMIN_TOKEN_FILE), `${admin}\n`, { mode: 0o600 });
  chmodSync(join(dir, ADMIN_TOKEN_FILE), 0o600);
}

/**
 * `lfaas keys rotate-token`: a new token signing key and admin token. The key it replaces stays
 * accepted (its tokens keep working until they expire) until the next rotation drops it.
 */
export function keysRotateToken(dir: string): void {
  const current = readFileSync(join(dir, TOKEN_PUBLIC_FILE), 'utf8').match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----\n?/)?.[0] ?? '';
  writeTokenKeys(dir, generateTokenKeys(), current.endsWith('\n') ? current : `${current}\n`);
}

/** `lfaas token revoke`: a token (or its id) refused from now on by every role, before its expiry. */
export function tokenRevoke(dir: string, tokenOrId: string): string {
  const id = tokenOrId.startsWith('lfaas1.') ? unverifiedClaims(tokenOrId)?.id : tokenOrId;
  if (id === undefined || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) throw new Error('not a token or a token id');
  const ids = readRevokedTokenIds(dir);
  if (!ids.includes(id)) writeFileSync(join(dir, TOKEN_REVOKED_FILE), `${JSON.stringify({ version: 1, ids: [...ids, id] }, null, 2)}\n`, { mode: 0o644 });
  return id;
}

/** The token keys of a keys folder: the public one always, the private one with `signing`. */
export function readTokenKeys(dir: string, signing = false): TokenKeys {
  const publicPem = readFileSync(join(dir, TOKEN_PUBLIC_FILE), 'utf8');
  return tokenKeysFromPem(publicPem, signing ? readFileSync(join(dir, TOKEN_PRIVATE_FILE), 'utf8') : undefined);
}

/** `1h`, `30m`, `7d`, `45s` or plain seconds, as seconds. */
export function parseTtl(text: string): number {
  const match = /^([1-9][0-9]{0,9})([smhd]?)$/.exec(text);
  if (match === null) throw new Error(`a ttl is a number of seconds, or with s, m, h or d: ${JSON.stringify(text)}`);
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/**
 * A grant as the command line writes it: `<owner>:<rights>[:<restriction>...]`, rights joined by
 * `+` or `,`, each restriction `prefix=<key prefix>` or `function=<name>`; e.g.
 * `bob:read+call:prefix=bob/shared/:function=bob/resize`. Checked again with the token's claims.
 */
export function parseGrant(text: string): Grant {
  const [owner, rights, ...restrictions] = text.split(':');
  if (owner === undefined || rights === undefined || owner === '' || rights === '') throw new Error(`a grant is <owner>:<rights>[:prefix=<p>][:function=<f>]: ${JSON.stringify(text)}`);
  const keyPrefixes: string[] = [];
  const functions: string[] = [];
  for (const restriction of restrictions) {
    const [kind, ...rest] = restriction.split('=');
    const value = rest.join('=');
    if (kind === 'prefix' && value !== '') keyPrefixes.push(value);
    else if (kind === 'function' && value !== '') functions.push(value);
    else throw new Error(`a grant's restriction is prefix=<key prefix> or function=<name>: ${JSON.stringify(restriction)}`);
  }
  return {
    owner,
    rights: rights.split(/[+,]/).filter((right) => right.length > 0) as Grant['rights'],
    ...(keyPrefixes.length === 0 ? {} : { keyPrefixes }),
    ...(functions.length === 0 ? {} : { functions }),
  };
}

/** `lfaas token create`: a token for an owner, signed with the folder's token key; printed. */
export function printTokenCreate(dir: string, options: { owner: string; rights: string; ttl: string; keyPrefix?: string[]; function?: string[]; grant?: string[]; json?: boolean }): void {
  const rights = options.rights.split(',').filter((right) => right.length > 0) as Right[];
  const token = createToken(readTokenKeys(dir, true), {
    owner: options.owner,
    rights,
    ttlSeconds: parseTtl(options.ttl),
    ...(options.keyPrefix === undefined || options.keyPrefix.length === 0 ? {} : { keyPrefixes: options.keyPrefix }),
    ...(options.function === undefined || options.function.length === 0 ? {} : { functions: options.function }),
    ...(options.grant === undefined || options.grant.length === 0 ? {} : { grants: options.grant.map(parseGrant) }),
  });
  if (options.json === true) {
    const claims = unverifiedClaims(token);
    process.stdout.write(`${JSON.stringify({ token, id: claims?.id ?? null, owner: options.owner, rights, expiresAt: claims === undefined ? null : new Date(claims.expiresAt * 1000).toISOString() })}\n`);
    return;
  }
  process.stdout.write(`${token}\n`);
}

/** A new member: `<name>.key` made (or kept) and listed under `role`. */
export function keysAdd(dir: string, role: Role, name: string): string {
  if (!NAME.test(name)) throw new Error(`a key name is 1-64 letters, digits, '_', '.', '-': ${JSON.stringify(name)}`);
  const doc = readMembers(dir);
  const key = keyText(ensureKeyPair(dir, name).publicKey);
  if (doc.revoked.includes(key)) throw new Error(`${name}.key was revoked; remove the file to make a new one`);
  const members = { ...doc.members, [role]: doc.members[role].includes(key) ? doc.members[role] : [...doc.members[role], key] };
  writeMembers(dir, { ...doc, members });
  return key;
}

/** Takes `<name>.key` off the list, into `revoked`, and deletes its file. */
export function keysRevoke(dir: string, name: string): string {
  if (!NAME.test(name)) throw new Error(`not a key name: ${JSON.stringify(name)}`);
  const doc = readMembers(dir);
  const key = keyText(readKeyPair(dir, name).publicKey);
  const members = Object.fromEntries(ROLES.map((role) => [role, doc.members[role].filter((listed) => listed !== key)])) as Record<Role, string[]>;
  writeMembers(dir, { version: 1, members, revoked: doc.revoked.includes(key) ? doc.revoked : [...doc.revoked, key] });
  rmSync(join(dir, `${name}.key`));
  return key;
}

export function printKeysInit(dir: string, json = false): void {
  const doc = keysInit(dir);
  if (json) {
    process.stdout.write(`${JSON.stringify({ folder: dir, members: Object.fromEntries(ROLES.map((role) => [role, doc.members[role].length])), adminToken: join(dir, ADMIN_TOKEN_FILE) })}\n`);
    return;
  }
  const lines = [
    `keys folder ${dir}: ${ROLES.map((role) => `${role}.key`).join(', ')} and members.json (${ROLES.map((role) => `${doc.members[role].length} ${role}`).join(', ')})`,
    `start each role with --keys ${dir} (it uses <role>.key; --key-name picks another);`,
    `add a member: lfaas keys add ${dir} --role executor --name executor-2; revoke one: lfaas keys revoke ${dir} --name executor-2`,
    `tokens: ${TOKEN_PRIVATE_FILE} signs them (keep it where tokens are made), ${TOKEN_PUBLIC_FILE} verifies them; an admin token is in ${join(dir, ADMIN_TOKEN_FILE)}; make others with lfaas token create --keys ${dir} --owner alice --rights deploy,call,read,write --ttl 30d`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
