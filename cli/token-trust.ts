/**
 * A role's token verifier over the cluster's keys folder: the token public keys (`token.pub`, the
 * current key first, then one rotated out and still accepted) and the revoked token ids
 * (`tokens-revoked.json`). Both files are re-read when they change (checked at most once a
 * second), so a key rotation or a revocation reaches every running process without a restart; a
 * file that became unreadable keeps the last good reading (and says so).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TokenVerifier, tokenKeysFromPem } from '../protocol/index.js';
import type { TokenClaims } from '../protocol/index.js';

export const TOKEN_PUBLIC_FILE = 'token.pub';
export const TOKEN_REVOKED_FILE = 'tokens-revoked.json';
const RELOAD_CHECK_MS = 1000;

/** The ids in a keys folder's revocation list (none when there is no list). */
export function readRevokedTokenIds(dir: string): string[] {
  const path = join(dir, TOKEN_REVOKED_FILE);
  if (!existsSync(path)) return [];
  const doc = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  const ids = (doc as { ids?: unknown } | null)?.ids;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) throw new Error(`${path}: expected {"version":1,"ids":[...]}`);
  return ids as string[];
}

export class FolderTokenVerifier {
  private verifier: TokenVerifier;
  private stamp: string;
  private checkedMs = Date.now();

  constructor(private readonly dir: string) {
    this.stamp = this.stampNow();
    this.verifier = this.load();
  }

  verify(token: string): TokenClaims {
    this.maybeReload();
    return this.verifier.verify(token);
  }

  private maybeReload(): void {
    const now = Date.now();
    if (now - this.checkedMs < RELOAD_CHECK_MS) return;
    this.checkedMs = now;
    let stamp: string;
    try {
      stamp = this.stampNow();
    } catch {
      return;
    }
    if (stamp === this.stamp) return;
    try {
      // A new verifier: nothing verified under the old keys or list stays cached.
      this.verifier = this.load();
      this.stamp = stamp;
    } catch (error) {
      process.stderr.write(`${JSON.stringify({ level: 'warn', msg: `token keys not reloaded (the last ones read stay): ${(error as Error).message}` })}\n`);
    }
  }

  private stampNow(): string {
    const revoked = join(this.dir, TOKEN_REVOKED_FILE);
    return `${statSync(join(this.dir, TOKEN_PUBLIC_FILE)).mtimeMs}/${existsSync(revoked) ? statSync(revoked).mtimeMs : 0}`;
  }

  private load(): TokenVerifier {
    const keys = tokenKeysFromPem(readFileSync(join(this.dir, TOKEN_PUBLIC_FILE), 'utf8'));
    return new TokenVerifier(keys, undefined, undefined, new Set(readRevokedTokenIds(this.dir)));
  }
}
