/**
 * What an owner's token lets a client reach, and what a function reaches when it runs.
 *
 * Namespaces are plain name prefixes: owner `alice` owns every key, function and DAG whose name
 * starts with `alice/`. A token (tokens.ts) gives its owner rights (`read` and `write` keys,
 * `call` and `deploy` functions and DAGs) inside that namespace, optionally narrowed to key
 * prefixes and function names, plus grants: the same rights in another owner's namespace, put in
 * the token by whoever holds the cluster's token key. A token with the `admin` right reaches
 * every name, including names in no namespace (`counter`, `inc`: the cluster administrator's).
 *
 * System keys (`lfaas/...`) are the platform's: a client never writes one (message-rights.ts),
 * and reads only its own async calls' records and results (`lfaas/exec/<owner>/...`,
 * `lfaas/result/<owner>/...`: an owner's call ids start with `<owner>/`). An admin reads them all.
 *
 * A function runs with its owner's namespace: `alice/f` reaches `alice/...` keys only; a function
 * in no namespace (deployed by an admin) reaches any key that is not a system key. No function
 * reaches a system key.
 *
 * `accessRefusalOf` walks every name a client's request carries (keys, functions, DAGs, `ref`
 * arguments, call ids) and says why the token may not reach one, or undefined.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { isSystemKey } from './faas-records.js';
import type { Envelope } from './machine.js';
import { pb } from './messages.js';
import type { PbTypes } from './messages.js';
import { OWNER_PATTERN, RESERVED_OWNER } from './tokens.js';
import type { Right, TokenClaims } from './tokens.js';

/** What an action is done to: a key, or a function or DAG name. */
export type NameKind = 'key' | 'function';

/** The owner whose namespace `name` is in (`alice` for `alice/x`), or undefined for a name in none. */
export function ownerOfName(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash <= 0) return undefined;
  const owner = name.slice(0, slash);
  return OWNER_PATTERN.test(owner) && owner !== RESERVED_OWNER ? owner : undefined;
}

function isAdmin(claims: TokenClaims): boolean {
  return claims.rights.includes('admin');
}

function within(name: string, kind: NameKind, keyPrefixes: readonly string[] | undefined, functions: readonly string[] | undefined): boolean {
  if (kind === 'key') return keyPrefixes === undefined || keyPrefixes.some((prefix) => name.startsWith(prefix));
  return functions === undefined || functions.includes(name);
}

/** Why `claims` may not do `right` to `name`, or undefined when it may. */
export function nameRefusal(claims: TokenClaims, right: Right, name: string, kind: NameKind): string | undefined {
  if (isAdmin(claims)) return undefined;
  const shown = JSON.stringify(name.slice(0, 100));
  if (kind === 'key' && isSystemKey(name)) {
    const own = name.startsWith(`lfaas/result/${claims.owner}/`) || name.startsWith(`lfaas/exec/${claims.owner}/`);
    return right === 'read' && own ? undefined : `${shown} is a system key`;
  }
  const owner = ownerOfName(name);
  if (owner === claims.owner) {
    if (!claims.rights.includes(right)) return `the token of ${claims.owner} has no ${right} right`;
    return within(name, kind, claims.keyPrefixes, claims.functions) ? undefined : `the token of ${claims.owner} is restricted to other ${kind === 'key' ? 'key prefixes' : 'functions'} than ${shown}`;
  }
  if (owner !== undefined) {
    for (const grant of claims.grants ?? []) {
      if (grant.owner === owner && (grant.rights as readonly Right[]).includes(right) && within(name, kind, grant.keyPrefixes, grant.functions)) return undefined;
    }
  }
  return `${shown} is not in the namespace of ${claims.owner} (${claims.owner}/...) and no grant gives ${right} on it`;
}

/**
 * Why a function named `functionName` may not reach `key`, or undefined. A system key is refused
 * KVS_BAD_KEY, another owner's key UNAUTHORISED (thrown by the executor's `ctx`).
 */
export function functionKeyError(functionName: string, key: string): LfaasError | undefined {
  if (isSystemKey(key)) return new LfaasError(ErrorCode.KVS_BAD_KEY, `${JSON.stringify(key.slice(0, 100))} is a system key (lfaas/...): functions may not reach it`);
  const owner = ownerOfName(functionName);
  if (owner === undefined || key.startsWith(`${owner}/`)) return undefined;
  return new LfaasError(ErrorCode.UNAUTHORISED, `function ${functionName} runs with the rights of ${owner}: ${JSON.stringify(key.slice(0, 100))} is not in ${owner}/...`);
}

function argumentsRefusal(claims: TokenClaims, args: readonly PbTypes.IArgument[] | null | undefined): string | undefined {
  for (const argument of args ?? []) {
    const reference = argument.reference;
    if (reference !== undefined && reference !== null && reference.length > 0) {
      const refusal = nameRefusal(claims, 'read', reference, 'key');
      if (refusal !== undefined) return `ref(${JSON.stringify(reference.slice(0, 100))}): ${refusal}`;
    }
  }
  return undefined;
}

/** An owner's run (call) ids start with `<owner>/`: its async records and results are then its own. */
function runIdRefusal(claims: TokenClaims, runId: string | null | undefined): string | undefined {
  if (isAdmin(claims) || (runId ?? '').startsWith(`${claims.owner}/`)) return undefined;
  return `call id ${JSON.stringify((runId ?? '').slice(0, 100))} must start with ${claims.owner}/`;
}

/** `name` of a list request: an admin may list everything; an owner one name or a namespace (`bob/`) it reaches. */
function listRefusal(claims: TokenClaims, name: string): string | undefined {
  if (isAdmin(claims)) return undefined;
  if (name === '') return `the token of ${claims.owner} lists one name or a namespace (${claims.owner}/), not the whole cluster`;
  if (!name.endsWith('/')) {
    const call = nameRefusal(claims, 'call', name, 'function');
    return call === undefined || nameRefusal(claims, 'deploy', name, 'function') === undefined ? undefined : call;
  }
  const owner = name.slice(0, -1);
  if (owner === claims.owner && (claims.rights.includes('call') || claims.rights.includes('deploy'))) return undefined;
  if ((claims.grants ?? []).some((grant) => grant.owner === owner && (grant.rights.includes('call') || grant.rights.includes('deploy')))) return undefined;
  return `the token of ${claims.owner} may not list ${JSON.stringify(name.slice(0, 100))}`;
}

/**
 * Why a client holding `claims` may not send `envelope`, or undefined when it may. Every name the
 * request carries is checked; what is not named here (an echo, a ring or key-address lookup, an
 * unsubscribe) needs only a valid token.
 */
export function accessRefusalOf(envelope: Envelope, claims: TokenClaims): string | undefined {
  // The admin right reaches every name: nothing to walk (a 4,096-key GET is on the request path).
  if (isAdmin(claims)) return undefined;
  const check = (right: Right, name: string | null | undefined, kind: NameKind): string | undefined => nameRefusal(claims, right, name ?? '', kind);
  switch (envelope.body) {
    case 'kvsRequest': {
      const request = envelope.kvsRequest!;
      const right: Right = request.kind === pb.RequestKind.GET ? 'read' : 'write';
      for (const tuple of request.tuples ?? []) {
        const refusal = check(right, tuple.key, 'key');
        if (refusal !== undefined) return refusal;
      }
      return undefined;
    }
    case 'subscribe':
      for (const key of envelope.subscribe!.keys ?? []) {
        const refusal = check('read', key, 'key');
        if (refusal !== undefined) return refusal;
      }
      return undefined;
    case 'ringUpdate':
      for (const factor of envelope.ringUpdate!.replication ?? []) {
        const refusal = check('write', factor.key, 'key');
        if (refusal !== undefined) return refusal;
      }
      return undefined;
    case 'registerFunction':
      return check('deploy', envelope.registerFunction!.spec?.name, 'function');
    case 'deleteFunction':
      return check('deploy', envelope.deleteFunction!.name, 'function');
    case 'deleteDag':
      return check('deploy', envelope.deleteDag!.name, 'function');
    case 'registerDag': {
      const spec = envelope.registerDag!.spec;
      const refusal = check('deploy', spec?.name, 'function');
      if (refusal !== undefined) return refusal;
      for (const name of spec?.functions ?? []) {
        const inner = check('call', name, 'function');
        if (inner !== undefined) return `DAG function ${inner}`;
      }
      return undefined;
    }
    case 'listFunctions':
      return listRefusal(claims, envelope.listFunctions!.name ?? '');
    case 'listDags':
      return listRefusal(claims, envelope.listDags!.name ?? '');
    // Logs and invocations: of a function, DAG or namespace the token lists (the answer holds only those).
    case 'logsRequest':
      return listRefusal(claims, envelope.logsRequest!.name ?? '');
    case 'invocationsRequest':
      return listRefusal(claims, envelope.invocationsRequest!.name ?? '');
    case 'callRequest': {
      const request = envelope.callRequest!;
      return runIdRefusal(claims, request.callId) ?? check('call', request.function, 'function') ?? argumentsRefusal(claims, request.args);
    }
    case 'cancelCall':
      // Only the call's owner cancels it: call ids are in their owner's namespace.
      return runIdRefusal(claims, envelope.cancelCall!.callId);
    case 'dagCall': {
      const request = envelope.dagCall!;
      const refusal = runIdRefusal(claims, request.callId) ?? check('call', request.dag, 'function');
      if (refusal !== undefined) return refusal;
      for (const args of Object.values(request.args ?? {})) {
        const inner = argumentsRefusal(claims, args.args);
        if (inner !== undefined) return inner;
      }
      return undefined;
    }
    case 'schedule': {
      // A direct (leased) call, sent to an executor: the client wrote its function list, so every
      // function in it is checked, not only the DAG's name.
      const schedule = envelope.schedule!;
      const refusal = runIdRefusal(claims, schedule.runId) ?? ((schedule.dag ?? '') === '' ? undefined : check('call', schedule.dag, 'function'));
      if (refusal !== undefined) return refusal;
      for (const fn of schedule.functions ?? []) {
        const inner = check('call', fn.name, 'function') ?? argumentsRefusal(claims, fn.args);
        if (inner !== undefined) return inner;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}
