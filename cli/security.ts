/**
 * A role process's security: its member key pair and the cluster's member list, from a keys
 * folder (`--keys`, made by `lfaas keys init`), or plain mode (`--insecure`, loopback only,
 * warned about at every start).
 */
import { Membership, keyText, readKeyPair, setZapPolicy } from '../protocol/index.js';
import type { KeyPair, Role, ShellOptions } from '../protocol/index.js';
import { FolderTokenVerifier } from './token-trust.js';

/** What a role's command line says about security. */
export interface SecurityOptions {
  /** The keys folder. */
  readonly keys?: string;
  /** The key file's name in it (`<name>.key`); the role's name by default. */
  readonly keyName?: string;
  readonly insecure?: boolean;
}

export interface RoleSecurity {
  /** What its transports bind with. */
  readonly keyPair: KeyPair | 'insecure';
  /** Who is a member (absent: insecure, everyone may send everything). */
  readonly membership?: Membership;
  /** What a role's machine shell checks: membership, and clients' owner tokens (none when insecure). */
  readonly shell: Pick<ShellOptions, 'membership' | 'tokens'>;
}

/**
 * Loads the role's key pair and the member list, checks the key is a member of `role`, and makes
 * the process's ZAP handler refuse revoked keys. Throws (the process does not start) otherwise.
 */
export function roleSecurity(role: Role, options: SecurityOptions): RoleSecurity {
  if (options.insecure === true) return { keyPair: 'insecure', shell: {} };
  if (options.keys === undefined) throw new Error(`${role}: no keys: pass --keys <folder> (make one with \`lfaas keys init <folder>\`), or --insecure for a plain cluster on loopback`);
  const membership = new Membership(options.keys);
  const keyPair = readKeyPair(options.keys, options.keyName ?? role);
  const mine = keyText(keyPair.publicKey);
  const listed = membership.roleOf(mine);
  if (listed !== role) throw new Error(`${role}: the key ${options.keyName ?? role}.key is ${listed === undefined ? 'not a member' : `a ${listed} member, not a ${role} one`} in ${options.keys}/members.json`);
  setZapPolicy((key) => !membership.isRevoked(keyText(key)));
  const tokens = new FolderTokenVerifier(options.keys);
  return { keyPair, membership, shell: { membership, tokens } };
}
