/**
 * `lfaas keys` and `lfaas token` (the built CLI, real files): a keys folder with a key pair per
 * role (secret files mode 0600, never printed), the member list, the token keys and an admin
 * token; members added and revoked; tokens made for owners, verified with the folder's public
 * token key and no other.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FolderTokenVerifier, readTokenKeys } from '../cli/index.js';
import { TokenVerifier, readMembers } from '../protocol/index.js';
import { CLI } from './cluster.js';

const lfaas = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('lfaas keys and lfaas token', () => {
  const root = mkdtempSync(join(tmpdir(), 'lfaas-keys-cli-'));
  const dir = join(root, 'keys');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('keys init makes a key pair per role, the member list, the token keys and an admin token; secrets stay in 0600 files', () => {
    const init = lfaas('keys', 'init', dir);
    expect(init.status, init.stderr).toBe(0);
    const members = readMembers(dir);
    for (const role of ['routing', 'storage', 'scheduler', 'executor', 'monitor', 'ingress'] as const) {
      expect(members.members[role]).toHaveLength(1);
      const file = JSON.parse(readFileSync(join(dir, `${role}.key`), 'utf8')) as { publicKey: string; secretKey: string };
      expect(members.members[role][0]).toBe(file.publicKey);
      expect(statSync(join(dir, `${role}.key`)).mode & 0o777).toBe(0o600);
      expect(init.stdout).not.toContain(file.secretKey);
    }
    for (const secret of ['token-signing.key', 'admin.token']) expect(statSync(join(dir, secret)).mode & 0o777).toBe(0o600);
    const admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    expect(init.stdout).not.toContain(admin);
    expect(new TokenVerifier(readTokenKeys(dir)).verify(admin)).toMatchObject({ owner: 'admin', rights: ['deploy', 'call', 'read', 'write', 'admin'] });
    // Again: nothing is replaced.
    expect(lfaas('keys', 'init', dir).status).toBe(0);
    expect(readMembers(dir)).toEqual(members);
    expect(readFileSync(join(dir, 'admin.token'), 'utf8').trim()).toBe(admin);
  });

  it('keys add lists a new member under its role; keys revoke moves it to revoked and deletes its file', () => {
    const added = lfaas('keys', 'add', dir, '--role', 'executor', '--name', 'executor-2');
    expect(added.status, added.stderr).toBe(0);
    const key = (JSON.parse(readFileSync(join(dir, 'executor-2.key'), 'utf8')) as { publicKey: string }).publicKey;
    expect(readMembers(dir).members.executor).toContain(key);
    const revoked = lfaas('keys', 'revoke', dir, '--name', 'executor-2');
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(readMembers(dir).members.executor).not.toContain(key);
    expect(readMembers(dir).revoked).toContain(key);
    expect(() => statSync(join(dir, 'executor-2.key'))).toThrow();
    expect(lfaas('keys', 'add', dir, '--role', 'nobody', '--name', 'x').status).not.toBe(0);
  });

  it('an ingress member is added like any other; a members.json written before the ingress role still loads, and keys init adds the ingress key', () => {
    const added = lfaas('keys', 'add', dir, '--role', 'ingress', '--name', 'ingress-2');
    expect(added.status, added.stderr).toBe(0);
    const key = (JSON.parse(readFileSync(join(dir, 'ingress-2.key'), 'utf8')) as { publicKey: string }).publicKey;
    expect(readMembers(dir).members.ingress).toContain(key);
    // An older folder: no ingress list, no ingress.key.
    const old = join(root, 'old');
    cpSync(dir, old, { recursive: true });
    rmSync(join(old, 'ingress.key'));
    const document = JSON.parse(readFileSync(join(old, 'members.json'), 'utf8')) as { members: Record<string, unknown> };
    delete document.members['ingress'];
    writeFileSync(join(old, 'members.json'), JSON.stringify(document));
    expect(readMembers(old).members.ingress).toEqual([]);
    expect(readMembers(old).members.executor).toEqual(readMembers(dir).members.executor);
    const init = lfaas('keys', 'init', old);
    expect(init.status, init.stderr).toBe(0);
    const made = (JSON.parse(readFileSync(join(old, 'ingress.key'), 'utf8')) as { publicKey: string }).publicKey;
    expect(readMembers(old).members.ingress).toEqual([made]);
  });

  it('token create signs a token for an owner that this folder verifies and another does not; bad claims are refused', () => {
    const made = lfaas('token', 'create', '--keys', dir, '--owner', 'alice', '--rights', 'call,read', '--ttl', '2h', '--key-prefix', 'alice/photos/', '--function', 'alice/resize', '--grant', 'bob:read+call:prefix=bob/shared/:function=bob/f', 'carol:read');
    expect(made.status, made.stderr).toBe(0);
    const claims = new TokenVerifier(readTokenKeys(dir)).verify(made.stdout.trim());
    expect(claims).toMatchObject({
      owner: 'alice',
      rights: ['call', 'read'],
      keyPrefixes: ['alice/photos/'],
      functions: ['alice/resize'],
      grants: [
        { owner: 'bob', rights: ['read', 'call'], keyPrefixes: ['bob/shared/'], functions: ['bob/f'] },
        { owner: 'carol', rights: ['read'] },
      ],
    });
    expect(claims.expiresAt - claims.issuedAt).toBe(7200);
    const elsewhere = join(root, 'other');
    expect(lfaas('keys', 'init', elsewhere).status).toBe(0);
    expect(() => new TokenVerifier(readTokenKeys(elsewhere)).verify(made.stdout.trim())).toThrow(/another cluster/);
    for (const bad of [
      ['--owner', 'Alice', '--rights', 'call'],
      ['--owner', 'alice', '--rights', 'root'],
      ['--owner', 'alice', '--rights', 'call', '--ttl', '0'],
      // The platform's namespace is no owner's; a grant is to another owner, of non-admin rights, well formed.
      ['--owner', 'lfaas', '--rights', 'read'],
      ['--owner', 'alice', '--rights', 'read', '--grant', 'alice:read'],
      ['--owner', 'alice', '--rights', 'read', '--grant', 'bob:admin'],
      ['--owner', 'alice', '--rights', 'read', '--grant', 'bob'],
      ['--owner', 'alice', '--rights', 'read', '--grant', 'bob:read:everything'],
    ]) {
      const refused = lfaas('token', 'create', '--keys', dir, ...bad);
      expect(refused.status, bad.join(' ')).not.toBe(0);
      expect(refused.stdout).toBe('');
    }
  });

  it('keys rotate-token keeps the replaced key accepted until the next rotation; token revoke refuses one token; a running verifier sees both within a second', async () => {
    const made = lfaas('token', 'create', '--keys', dir, '--owner', 'erin', '--rights', 'read', '--ttl', '1h').stdout.trim();
    const running = new FolderTokenVerifier(dir);
    expect(running.verify(made).owner).toBe('erin');
    const adminBefore = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    expect(lfaas('keys', 'rotate-token', dir).status).toBe(0);
    const adminAfter = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    expect(adminAfter).not.toBe(adminBefore);
    expect(new TokenVerifier(readTokenKeys(dir)).verify(made).owner).toBe('erin');
    expect(new TokenVerifier(readTokenKeys(dir)).verify(adminAfter).owner).toBe('admin');
    expect(lfaas('keys', 'rotate-token', dir).status).toBe(0);
    expect(() => new TokenVerifier(readTokenKeys(dir)).verify(made)).toThrow(/signature/);
    expect(new TokenVerifier(readTokenKeys(dir)).verify(adminAfter).owner).toBe('admin');
    const other = lfaas('token', 'create', '--keys', dir, '--owner', 'erin', '--rights', 'read').stdout.trim();
    // The running verifier re-reads the folder at most once a second.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(running.verify(other).owner).toBe('erin');
    const revoked = lfaas('token', 'revoke', '--keys', dir, other);
    expect(revoked.status, revoked.stderr).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(() => running.verify(other)).toThrow(/revoked/);
    expect(() => running.verify(made)).toThrow(/signature/);
    expect(lfaas('token', 'revoke', '--keys', dir, 'not a token').status).not.toBe(0);
  });
});
