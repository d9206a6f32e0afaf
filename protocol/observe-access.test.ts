/**
 * Who may read function logs and the invocations listing (`logsRequest`, `invocationsRequest`):
 * any client may send them (message-rights.ts); its token must list the name it asks for
 * (owner-access.ts), as for `listFunctions`.
 */
import { describe, expect, it } from 'vitest';
import { pb } from './messages.js';
import type { Envelope } from './machine.js';
import { refusalOf } from './message-rights.js';
import { accessRefusalOf } from './owner-access.js';
import type { Right, TokenClaims } from './tokens.js';

const ALL: Right[] = ['deploy', 'call', 'read', 'write'];
const claims = (owner: string, rights: readonly Right[], extra: Partial<TokenClaims> = {}): TokenClaims => ({ owner, rights, issuedAt: 0, expiresAt: 1, id: 'test-token-id', ...extra });
const envelope = (body: Record<string, unknown>): Envelope => pb.Envelope.create(body) as Envelope;

describe('reading logs and invocations', () => {
  it('an owner names its namespace or a function in it; another owner\'s names, or nothing, are refused', () => {
    const alice = claims('alice', ALL);
    for (const body of ['logsRequest', 'invocationsRequest'] as const) {
      const ask = (name: string): string | undefined => accessRefusalOf(envelope({ [body]: { name } }), alice);
      expect(ask('alice/')).toBeUndefined();
      expect(ask('alice/resize')).toBeUndefined();
      expect(ask('bob/')).toContain('may not list');
      expect(ask('bob/resize')).toContain('not in the namespace of alice');
      expect(ask('')).toContain('not the whole cluster');
      expect(ask('inc')).toBeDefined();
      // A read-only token (no call or deploy right) lists nothing.
      expect(accessRefusalOf(envelope({ [body]: { name: 'alice/' } }), claims('alice', ['read']))).toBeDefined();
      // A grant of call on bob's namespace opens it; the admin reads everything.
      expect(accessRefusalOf(envelope({ [body]: { name: 'bob/' } }), claims('alice', ALL, { grants: [{ owner: 'bob', rights: ['call'] }] }))).toBeUndefined();
      expect(accessRefusalOf(envelope({ [body]: { name: '' } }), claims('root', ['admin']))).toBeUndefined();
    }
  });

  it('clients may send the requests; only members send the answers', () => {
    expect(refusalOf(envelope({ logsRequest: { name: 'alice/' } }), 'client')).toBeUndefined();
    expect(refusalOf(envelope({ invocationsRequest: { name: 'alice/' } }), 'client')).toBeUndefined();
    expect(refusalOf(envelope({ logsReply: {} }), 'client')).toBeDefined();
    expect(refusalOf(envelope({ invocationList: {} }), 'client')).toBeDefined();
    expect(refusalOf(envelope({ logsReply: {} }), 'executor')).toBeUndefined();
    expect(refusalOf(envelope({ invocationList: {} }), 'scheduler')).toBeUndefined();
  });
});
