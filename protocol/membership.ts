/**
 * Cluster membership by key: the member keys of each role, read from a keys folder.
 *
 * A keys folder (made by `lfaas keys init`) holds `members.json` and key files:
 * - `members.json`: `{ "version": 1, "members": { "<role>": ["<public key>", ...] }, "revoked": [...] }`,
 *   keys in the 43-character text of keys.ts. Only keys listed under a role may act as that role
 *   (join, depart, heartbeat, gossip, hand off, report statistics, place or receive schedules:
 *   message-rights.ts); a revoked key is refused at the handshake (zap.ts), so a removed member
 *   is refused from then on.
 * - `<name>.key`: `{ "publicKey": "...", "secretKey": "..." }`, mode 0600; a role process uses
 *   `<role>.key` unless told another name. Secret keys are never logged.
 *
 * Why a list rather than a cluster authority signing member certificates: CURVE authenticates a
 * bare key, so a certificate would have to travel beside every connection (ZeroMQ has no place
 * for it) and revocation would still need a list; a list is one file to distribute and rotate.
 *
 * The list is read again when the file changes (checked every second): rotation needs no restart.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { generateKeyPair, isKeyText, keyFromText, keyText } from './keys.js';
import type { KeyPair } from './keys.js';
import { Reloading } from './reloading.js';

/**
 * The member roles. `ingress` is the last one added: its key may only announce its ingress to the
 * routing nodes (message-rights.ts); a `members.json` written before it (no `ingress` list) reads
 * as an empty list, so an older keys folder keeps working (`lfaas keys init` on it adds the key).
 */
export const ROLES = ['routing', 'storage', 'scheduler', 'executor', 'monitor', 'ingress'] as const;
export type Role = (typeof ROLES)[number];

export const MEMBERS_FILE = 'members.json';

export interface MembersDocument {
  readonly version: 1;
  readonly members: Readonly<Record<Role, readonly string[]>>;
  readonly revoked: readonly string[];
}

function badKeys(dir: string, why: string): LfaasError {
  return new LfaasError(ErrorCode.UNAUTHORISED, `keys folder ${dir}: ${why}`);
}

/** Reads and checks `members.json`; throws UNAUTHORISED naming the problem. */
export function readMembers(dir: string): MembersDocument {
  const path = join(dir, MEMBERS_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw badKeys(dir, `cannot read ${MEMBERS_FILE}: ${(error as Error).message}`);
  }
  const doc = parsed as Partial<MembersDocument> | null;
  if (doc === null || typeof doc !== 'object' || doc.version !== 1 || typeof doc.members !== 'object' || doc.members === null) throw badKeys(dir, `${MEMBERS_FILE} is not a version 1 member list`);
  const members = {} as Record<Role, string[]>;
  for (const role of ROLES) {
    const keys = (doc.members as Record<string, unknown>)[role] ?? [];
    if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string' && isKeyText(key))) throw badKeys(dir, `members.${role} must be a list of keys`);
    members[role] = keys as string[];
  }
  const revoked = doc.revoked ?? [];
  if (!Array.isArray(revoked) || !revoked.every((key) => typeof key === 'string' && isKeyText(key))) throw badKeys(dir, 'revoked must be a list of keys');
  return { version: 1, members, revoked };
}

export function writeMembers(dir: string, doc: MembersDocument): void {
  const path = join(dir, MEMBERS_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
}

/** Reads `<dir>/<name>.key`. */
export function readKeyPair(dir: string, name: string): KeyPair {
  const path = join(dir, `${name}.key`);
  let parsed: { publicKey?: unknown; secretKey?: unknown };
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as typeof parsed;
  } catch (error) {
    throw badKeys(dir, `cannot read ${name}.key: ${(error as Error).message}`);
  }
  if (typeof parsed.publicKey !== 'string' || typeof parsed.secretKey !== 'string' || !isKeyText(parsed.publicKey) || !isKeyText(parsed.secretKey)) throw badKeys(dir, `${name}.key holds no key pair`);
  return { publicKey: keyFromText(parsed.publicKey), secretKey: keyFromText(parsed.secretKey) };
}

/** Writes a fresh key pair to `<dir>/<name>.key` (mode 0600) unless one is there; returns it. */
export function ensureKeyPair(dir: string, name: string): KeyPair {
  const path = join(dir, `${name}.key`);
  if (existsSync(path)) return readKeyPair(dir, name);
  const pair = generateKeyPair();
  writeFileSync(path, `${JSON.stringify({ publicKey: keyText(pair.publicKey), secretKey: keyText(pair.secretKey) })}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return pair;
}

/** The member list of a keys folder, kept current as the file changes (reloading.ts). */
export class Membership {
  private readonly list: Reloading<{ readonly roles: ReadonlyMap<string, Role>; readonly revoked: ReadonlySet<string> }>;

  constructor(readonly dir: string) {
    this.list = new Reloading([join(dir, MEMBERS_FILE)], () => membersOf(readMembers(dir)), 'member list');
  }

  /** The role `key` (its text) is a member of, if any. */
  roleOf(key: string): Role | undefined {
    return this.list.current.roles.get(key);
  }

  isRevoked(key: string): boolean {
    return this.list.current.revoked.has(key);
  }
}

/** Each member key's role (revoked keys have none), and the revoked keys. */
function membersOf(doc: MembersDocument): { roles: Map<string, Role>; revoked: Set<string> } {
  const revoked = new Set(doc.revoked);
  const roles = new Map<string, Role>();
  for (const role of ROLES) for (const key of doc.members[role]) if (!revoked.has(key)) roles.set(key, role);
  return { roles, revoked };
}
