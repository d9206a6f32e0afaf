import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { pb } from './messages.js';
import type { Envelope } from './machine.js';
import { accessRefusalOf, functionKeyError, nameRefusal, ownerOfName } from './owner-access.js';
import { OWNER_PATTERN } from './tokens.js';
import type { Right, TokenClaims } from './tokens.js';

const OWNER_RIGHTS: Right[] = ['deploy', 'call', 'read', 'write'];
const owner = fc.stringMatching(OWNER_PATTERN).filter((name) => name !== 'lfaas');
const rights = fc.subarray(OWNER_RIGHTS, { minLength: 1 });
const right = fc.constantFrom(...OWNER_RIGHTS);
const rest = fc.string({ minLength: 1, maxLength: 20 });

function claims(of: string, held: readonly Right[], extra: Partial<TokenClaims> = {}): TokenClaims {
  return { owner: of, rights: held, issuedAt: 0, expiresAt: 1, id: 'test-token-id', ...extra };
}

const envelope = (body: Record<string, unknown>): Envelope => pb.Envelope.create(body) as Envelope;

describe('owner access', () => {
  it('an owner reaches a name of its namespace exactly when it holds the right', () => {
    fc.assert(
      fc.property(owner, rights, right, rest, fc.constantFrom('key', 'function') as fc.Arbitrary<'key' | 'function'>, (who, held, wanted, tail, kind) => {
        const refusal = nameRefusal(claims(who, held), wanted, `${who}/${tail}`, kind);
        expect(refusal === undefined).toBe(held.includes(wanted));
      }),
    );
  });

  it('no owner reaches another namespace, or a name in none, without a grant, whatever its rights', () => {
    fc.assert(
      fc.property(owner, owner, rights, right, rest, (who, other, held, wanted, tail) => {
        fc.pre(who !== other);
        for (const name of [`${other}/${tail}`, tail.replace(/\//g, '_'), `/${tail}`]) {
          expect(nameRefusal(claims(who, held), wanted, name, 'key'), name).toBeDefined();
          expect(nameRefusal(claims(who, held), wanted, name, 'function'), name).toBeDefined();
        }
      }),
    );
  });

  it('a grant opens the rights it lists in its owner\'s namespace, within its restrictions, and nothing else', () => {
    fc.assert(
      fc.property(owner, owner, rights, right, rest, rest, (who, other, granted, wanted, shared, tail) => {
        fc.pre(who !== other);
        const holder = claims(who, ['read'], { grants: [{ owner: other, rights: granted as Exclude<Right, 'admin'>[], keyPrefixes: [`${other}/${shared}/`], functions: [`${other}/f`] }] });
        const inside = `${other}/${shared}/${tail}`;
        expect(nameRefusal(holder, wanted, inside, 'key') === undefined).toBe(granted.includes(wanted));
        expect(nameRefusal(holder, wanted, `${other}/f`, 'function') === undefined).toBe(granted.includes(wanted));
        // Outside the prefix or the function list, and in a third namespace: refused.
        expect(nameRefusal(holder, wanted, `${other}/x${shared}`, 'key')).toBeDefined();
        expect(nameRefusal(holder, wanted, `${other}/g`, 'function')).toBeDefined();
        expect(nameRefusal(holder, wanted, `zz${other}/${shared}/${tail}`, 'key')).toBeDefined();
      }),
    );
  });

  it('restrictions narrow the owner\'s own namespace', () => {
    const narrow = claims('alice', OWNER_RIGHTS, { keyPrefixes: ['alice/public/'], functions: ['alice/resize'] });
    expect(nameRefusal(narrow, 'read', 'alice/public/a', 'key')).toBeUndefined();
    expect(nameRefusal(narrow, 'read', 'alice/private/a', 'key')).toContain('restricted');
    expect(nameRefusal(narrow, 'call', 'alice/resize', 'function')).toBeUndefined();
    expect(nameRefusal(narrow, 'call', 'alice/other', 'function')).toContain('restricted');
  });

  it('system keys: never written by a client; read only for its own async records and results; an admin reads them all', () => {
    fc.assert(
      fc.property(owner, owner, right, rest, (who, other, wanted, id) => {
        fc.pre(who !== other);
        const holder = claims(who, OWNER_RIGHTS);
        for (const kind of ['result', 'exec']) {
          expect(nameRefusal(holder, 'read', `lfaas/${kind}/${who}/${id}`, 'key')).toBeUndefined();
          expect(nameRefusal(holder, 'write', `lfaas/${kind}/${who}/${id}`, 'key')).toBeDefined();
          expect(nameRefusal(holder, wanted, `lfaas/${kind}/${other}/${id}`, 'key')).toBeDefined();
        }
        expect(nameRefusal(holder, wanted, `lfaas/function/${who}/${id}`, 'key')).toBeDefined();
        expect(nameRefusal(claims('admin', ['admin']), 'read', `lfaas/function/${who}/${id}`, 'key')).toBeUndefined();
      }),
    );
  });

  it('the admin right reaches every name', () => {
    fc.assert(
      fc.property(right, fc.string({ maxLength: 40 }), (wanted, name) => {
        expect(nameRefusal(claims('ops', ['admin']), wanted, name, 'key')).toBeUndefined();
      }),
    );
  });

  it('ownerOfName: the first segment when it is an owner\'s name (never the platform\'s)', () => {
    expect(ownerOfName('alice/x')).toBe('alice');
    expect(ownerOfName('alice/x/y')).toBe('alice');
    expect(ownerOfName('x')).toBeUndefined();
    expect(ownerOfName('/x')).toBeUndefined();
    expect(ownerOfName('Alice/x')).toBeUndefined();
    expect(ownerOfName('lfaas/functions')).toBeUndefined();
  });

  it('a function reaches its owner\'s keys only, a function in no namespace any key but a system key', () => {
    expect(functionKeyError('alice/f', 'alice/k')).toBeUndefined();
    expect(functionKeyError('alice/f', 'bob/k')?.code).toBe(ErrorCode.UNAUTHORISED);
    expect(functionKeyError('alice/f', 'k')?.code).toBe(ErrorCode.UNAUTHORISED);
    expect(functionKeyError('alice/f', 'lfaas/result/alice/x')?.code).toBe(ErrorCode.KVS_BAD_KEY);
    expect(functionKeyError('f', 'bob/k')).toBeUndefined();
    expect(functionKeyError('f', 'lfaas/functions')?.code).toBe(ErrorCode.KVS_BAD_KEY);
  });

  it('a request is refused when any one name it carries is out of reach', () => {
    const alice = claims('alice', OWNER_RIGHTS);
    const keys = (...names: string[]) => names.map((key) => ({ key }));
    expect(accessRefusalOf(envelope({ kvsRequest: { kind: pb.RequestKind.GET, tuples: keys('alice/a', 'alice/b') } }), alice)).toBeUndefined();
    expect(accessRefusalOf(envelope({ kvsRequest: { kind: pb.RequestKind.GET, tuples: keys('alice/a', 'bob/b', 'alice/c') } }), alice)).toContain('bob/b');
    expect(accessRefusalOf(envelope({ kvsRequest: { kind: pb.RequestKind.PUT, tuples: keys('alice/a') } }), claims('alice', ['read']))).toContain('no write right');
    expect(accessRefusalOf(envelope({ subscribe: { subscriber: 'mem://x', keys: ['alice/a', 'lfaas/result/bob/1'] } }), alice)).toContain('system key');
    expect(accessRefusalOf(envelope({ ringUpdate: { replication: [{ key: 'bob/hot', global: 3 }] } }), alice)).toContain('bob/hot');
    expect(accessRefusalOf(envelope({ registerFunction: { spec: { name: 'bob/f' } } }), alice)).toBeDefined();
    expect(accessRefusalOf(envelope({ registerDag: { spec: { name: 'alice/d', functions: ['alice/f', 'bob/g'] } } }), alice)).toContain('DAG function');
    expect(accessRefusalOf(envelope({ callRequest: { callId: 'alice/1', function: 'alice/f', args: [{ reference: 'bob/k' }] } }), alice)).toContain('ref(');
    expect(accessRefusalOf(envelope({ callRequest: { callId: 'bob/1', function: 'alice/f' } }), alice)).toContain('call id');
    expect(accessRefusalOf(envelope({ dagCall: { callId: 'alice/2', dag: 'alice/d', args: { 'alice/f': { args: [{ reference: 'bob/k' }] } } } }), alice)).toContain('ref(');
    expect(accessRefusalOf(envelope({ schedule: { runId: 'alice/3', dag: 'alice/d', functions: [{ name: 'alice/f' }, { name: 'bob/g' }] } }), alice)).toContain('bob/g');
    expect(accessRefusalOf(envelope({ listFunctions: { name: '' } }), alice)).toContain('not the whole cluster');
    expect(accessRefusalOf(envelope({ listFunctions: { name: 'alice/' } }), alice)).toBeUndefined();
    expect(accessRefusalOf(envelope({ listDags: { name: 'bob/' } }), alice)).toBeDefined();
    expect(accessRefusalOf(envelope({ echo: {} }), alice)).toBeUndefined();
  });
});
