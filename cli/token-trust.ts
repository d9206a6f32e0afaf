/**
 * A role's token verifier over the cluster's keys folder: the token public keys (`token.pub`, the
 * current key first, then one rotated out and still accepted) and the revoked token ids
 * (`tokens-revoked.json`). Both files are re-read when they change (protocol/reloading.ts), so a
 * key rotation or a revocation reaches every running process without a restart.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Reloading, TokenVerifier, tokenKeysFromPem } from '../protocol/index.js';
import type { TokenClaims } from '../protocol/index.js';

export const TOKEN_PUBLIC_FILE = 'token.pub';
export const TOKEN_REVOKED_FILE = 'tokens-revoked.json';

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
  /** A new verifier whenever the files change: nothing verified under the old keys or list stays cached. */
  private readonly verifier: Reloading<TokenVerifier>;

  constructor(dir: string) {
    this.verifier = new Reloading(
      [join(dir, TOKEN_PUBLIC_FILE), join(dir, TOKEN_REVOKED_FILE)],
      () => new TokenVerifier(tokenKeysFromPem(readFileSync(join(dir, TOKEN_PUBLIC_FILE), 'utf8')), undefined, undefined, new Set(readRevokedTokenIds(dir))),
      'token keys',
    );
  }

  verify(token: string): TokenClaims {
    return this.verifier.current.verify(token);
  }
}
