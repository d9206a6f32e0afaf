/**
 * `lfaas keys`: a cluster's keys folder. `init` makes one (a key pair per role and the member
 * list), `add` makes another member's key pair and lists it, `revoke` takes a member off the list
 * (its key is refused from then on, handshakes included). Running processes re-read the list
 * within a second. Secret keys are written with mode 0600 and never printed.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROLES, ensureKeyPair, keyText, readKeyPair, readMembers, writeMembers } from '../protocol/index.js';
import type { MembersDocument, Role } from '../protocol/index.js';

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
  return doc;
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

export function printKeysInit(dir: string): void {
  const doc = keysInit(dir);
  const lines = [
    `keys folder ${dir}: ${ROLES.map((role) => `${role}.key`).join(', ')} and members.json (${ROLES.map((role) => `${doc.members[role].length} ${role}`).join(', ')})`,
    `start each role with --keys ${dir} (it uses <role>.key; --key-name picks another);`,
    `add a member: lfaas keys add ${dir} --role executor --name executor-2; revoke one: lfaas keys revoke ${dir} --name executor-2`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
