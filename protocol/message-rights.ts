/**
 * Who may send what: for each message body, the roles whose member keys may send it, and which
 * messages anyone may send (a client; what a client may then do is its token's business).
 *
 * The cluster's own traffic (ring changes, heartbeats, gossip and hand-offs, statistics,
 * schedules and triggers, executor statuses, cache updates, the monitor's stats requests and pin
 * counts) and every answer a node receives
 * (members send requests only to members) is for members of the right role. A client may send
 * requests: echo, KVS reads and writes (not `from_replica`, which skips ownership checks), key
 * and ring lookups, replication factors (a ring update with no nodes), subscriptions, the
 * registry's and calls' requests, and a direct schedule (one naming no scheduler: a leased call).
 * An ingress key (the `ingress` role) may send one thing: the announcement of its own ingress.
 */
import { isSystemKey } from './faas-records.js';
import type { Envelope } from './machine.js';
import type { Role } from './membership.js';
import { pb } from './messages.js';

/**
 * Who writes system keys (`lfaas/...`): the registry's records only schedulers; the monitor's
 * lease and event log only monitors; an async call's execution record and result schedulers and
 * executors; storage members replicate them all.
 */
export function systemKeyWriters(key: string): readonly Role[] {
  if (/^lfaas\/(function\/|functions$|dag\/|dags$)/.test(key)) return ['scheduler', 'storage'];
  if (/^lfaas\/(monitor\/|events$)/.test(key)) return ['monitor', 'storage'];
  return ['scheduler', 'executor', 'storage'];
}

/** A message's sender as membership sees it: a member of a role, or anybody else. */
export type Sender = Role | 'client';

type Body = NonNullable<Envelope['body']>;

const ANYONE = 'anyone';
const STORAGE_SIDE: readonly Role[] = ['routing', 'storage'];
const ALL_MEMBERS: readonly Role[] = ['routing', 'storage', 'scheduler', 'executor', 'monitor'];

const RIGHTS: Readonly<Record<Body, readonly Role[] | typeof ANYONE>> = {
  echo: ANYONE,
  kvsRequest: ANYONE,
  keyAddressRequest: ANYONE,
  ringRequest: ANYONE,
  ringUpdate: ANYONE,
  subscribe: ANYONE,
  unsubscribe: ANYONE,
  registerFunction: ANYONE,
  registerDag: ANYONE,
  callRequest: ANYONE,
  dagCall: ANYONE,
  cancelCall: ANYONE,
  listFunctions: ANYONE,
  deleteFunction: ANYONE,
  listDags: ANYONE,
  deleteDag: ANYONE,
  schedule: ANYONE,
  // Function logs and the invocations listing: what an owner's token reaches (owner-access.ts).
  logsRequest: ANYONE,
  invocationsRequest: ANYONE,
  // Answers: to members' requests, from members.
  errorReply: ALL_MEMBERS,
  kvsResponse: ALL_MEMBERS,
  keyAddressResponse: ALL_MEMBERS,
  registerFunctionResponse: ALL_MEMBERS,
  callResponse: ALL_MEMBERS,
  cancelCallResponse: ALL_MEMBERS,
  functionList: ALL_MEMBERS,
  dagList: ALL_MEMBERS,
  done: ALL_MEMBERS,
  logsReply: ['scheduler', 'executor'],
  invocationList: ['scheduler', 'executor'],
  versionReply: ['executor'],
  // The storage tier's own traffic.
  nodeJoin: STORAGE_SIDE,
  nodeDepart: STORAGE_SIDE,
  heartbeat: STORAGE_SIDE,
  gossip: ['storage'],
  digestExchange: ['storage'],
  keyUpdate: ['storage'],
  statsReport: ALL_MEMBERS,
  // The FaaS tier's own traffic.
  trigger: ['executor'],
  executorStatus: ['executor'],
  invocationMessage: ['executor'],
  versionRequest: ['executor'],
  prepare: ['scheduler'],
  runFinished: ['scheduler', 'executor'],
  // The monitor's view of the cluster.
  clusterStatsRequest: ['monitor'],
  clusterStats: ALL_MEMBERS,
  // The monitor's decision: how many executors keep each function warm.
  pinCounts: ['monitor'],
  // Discovery (discovery.proto): schedulers, monitors and ingresses announce themselves to the
  // routing nodes (each only its own role: ANNOUNCERS), anyone asks for the live list.
  serviceAnnounce: ['scheduler', 'monitor', 'ingress'],
  servicesRequest: ANYONE,
  serviceList: ['routing'],
};

/** The member role that may announce each service role. */
const ANNOUNCERS: Readonly<Record<number, Role>> = { [pb.ServiceRole.SERVICE_SCHEDULER]: 'scheduler', [pb.ServiceRole.SERVICE_MONITOR]: 'monitor', [pb.ServiceRole.SERVICE_INGRESS]: 'ingress' };

/**
 * Why `sender` may not send `envelope`, or undefined when it may. A message with no body is left
 * to the machine (it answers PROTO_MALFORMED).
 */
export function refusalOf(envelope: Envelope, sender: Sender): string | undefined {
  const body = envelope.body;
  if (body === undefined || body === null) return undefined;
  const allowed = RIGHTS[body];
  if (allowed === undefined) return undefined;
  // An ingress key only announces its ingress: it is no member of the cluster's traffic, and what
  // the ingress does for callers goes on a client key with their tokens (a member skips tokens).
  if (sender === 'ingress' && body !== 'serviceAnnounce') return `an ingress member key only announces its ingress (${body} goes on a client key with a token)`;
  if (body === 'serviceAnnounce' && sender !== 'client') {
    const role = Number(envelope.serviceAnnounce?.role ?? 0);
    if (ANNOUNCERS[role] !== sender) return `a ${sender} member may not announce a service of role ${role}: each member announces its own role only`;
  }
  if (allowed !== ANYONE) return sender !== 'client' && allowed.includes(sender) ? undefined : `${body} is for ${allowed.join(' and ')} members only`;
  if (body === 'kvsRequest') {
    const request = envelope.kvsRequest;
    if (request !== null && request !== undefined && (request.kind === pb.RequestKind.PUT || request.kind === pb.RequestKind.DELETE)) {
      for (const tuple of request.tuples ?? []) {
        const key = tuple.key ?? '';
        if (!isSystemKey(key)) continue;
        const writers = systemKeyWriters(key);
        if (sender === 'client' || !writers.includes(sender)) return `${JSON.stringify(key.slice(0, 100))} is a system key, written only by ${writers.join(' and ')} members`;
      }
    }
  }
  if (sender !== 'client') return undefined;
  switch (body) {
    case 'kvsRequest':
      return envelope.kvsRequest?.fromReplica === true ? 'a replica write (from_replica) is for storage members only' : undefined;
    case 'ringUpdate':
      return (envelope.ringUpdate?.nodes?.length ?? 0) > 0 || Number(envelope.ringUpdate?.epoch ?? 0) > 0 || (envelope.ringUpdate?.defaultGlobal ?? 0) > 0 || (envelope.ringUpdate?.defaultLocal ?? 0) > 0
        ? 'ring membership and the default replication are for routing and storage members only'
        : undefined;
    case 'schedule':
      return (envelope.schedule?.scheduler ?? '') !== '' ? 'a schedule from a scheduler is for scheduler members only' : undefined;
    default:
      return undefined;
  }
}
