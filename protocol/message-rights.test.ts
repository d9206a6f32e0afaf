/**
 * Who may send what (message-rights.ts): every body from a stranger and from each role, the
 * cases a client may send with limits (replica writes, ring changes, scheduler-placed schedules),
 * and system keys written only by their roles.
 */
import { describe, expect, it } from 'vitest';
import type { Envelope } from './machine.js';
import { ROLES } from './membership.js';
import type { Role } from './membership.js';
import { refusalOf } from './message-rights.js';
import { pb } from './messages.js';

const envelope = (body: Record<string, unknown>): Envelope => pb.Envelope.fromObject(body) as Envelope;
const put = (key: string, kind = pb.RequestKind.PUT): Envelope => envelope({ kvsRequest: { kind, tuples: [{ key }] } });
const allowed = (message: Envelope, sender: Role | 'client'): boolean => refusalOf(message, sender) === undefined;

describe('message rights', () => {
  it('a client may send requests, and nothing of the cluster\'s own traffic or any answer', () => {
    const requests = ['echo', 'kvsRequest', 'keyAddressRequest', 'ringRequest', 'subscribe', 'unsubscribe', 'registerFunction', 'registerDag', 'callRequest', 'dagCall', 'listFunctions', 'deleteFunction', 'listDags', 'deleteDag', 'ringUpdate', 'schedule'];
    const members = ['nodeJoin', 'nodeDepart', 'heartbeat', 'gossip', 'digestExchange', 'keyUpdate', 'statsReport', 'trigger', 'executorStatus', 'invocationMessage', 'versionRequest', 'prepare', 'runFinished', 'clusterStatsRequest', 'pinCounts', 'errorReply', 'kvsResponse', 'keyAddressResponse', 'registerFunctionResponse', 'callResponse', 'functionList', 'dagList', 'done', 'versionReply'];
    for (const body of requests) expect(allowed(envelope({ [body]: {} }), 'client'), body).toBe(true);
    for (const body of members) {
      expect(allowed(envelope({ [body]: {} }), 'client'), body).toBe(false);
      expect(ROLES.some((role) => allowed(envelope({ [body]: {} }), role)), `${body}: some role may send it`).toBe(true);
    }
  });

  it('discovery: anyone asks for the services; a member announces only its own role', () => {
    const announce = (role: number) => envelope({ serviceAnnounce: { role, address: 'tcp://10.0.0.1:1' } });
    expect(allowed(envelope({ servicesRequest: {} }), 'client')).toBe(true);
    expect(allowed(envelope({ serviceList: {} }), 'routing')).toBe(true);
    expect(allowed(envelope({ serviceList: {} }), 'client')).toBe(false);
    expect(allowed(announce(pb.ServiceRole.SERVICE_SCHEDULER), 'scheduler')).toBe(true);
    expect(allowed(announce(pb.ServiceRole.SERVICE_MONITOR), 'monitor')).toBe(true);
    expect(allowed(announce(pb.ServiceRole.SERVICE_MONITOR), 'scheduler')).toBe(false);
    expect(allowed(announce(pb.ServiceRole.SERVICE_SCHEDULER), 'monitor')).toBe(false);
    expect(allowed(announce(pb.ServiceRole.SERVICE_INGRESS), 'scheduler')).toBe(false);
    for (const sender of ['client', 'executor', 'storage', 'routing', 'ingress'] as const) expect(allowed(announce(pb.ServiceRole.SERVICE_SCHEDULER), sender), sender).toBe(false);
  });

  it('an ingress key announces an ingress and nothing else; no other key announces an ingress', () => {
    const ingress = envelope({ serviceAnnounce: { role: pb.ServiceRole.SERVICE_INGRESS, address: 'http://10.0.0.1:8080' } });
    expect(allowed(ingress, 'ingress')).toBe(true);
    for (const sender of ['client', 'scheduler', 'monitor', 'executor', 'storage', 'routing'] as const) expect(allowed(ingress, sender), sender).toBe(false);
    expect(allowed(envelope({ serviceAnnounce: { role: pb.ServiceRole.SERVICE_MONITOR, address: 'tcp://10.0.0.1:1' } }), 'ingress')).toBe(false);
    // None of a member's powers, and not even a client's requests (those go on a client key, with a token).
    for (const body of ['echo', 'kvsRequest', 'callRequest', 'ringUpdate', 'schedule', 'servicesRequest', 'nodeJoin', 'heartbeat', 'statsReport', 'executorStatus', 'errorReply', 'kvsResponse', 'clusterStats']) {
      expect(allowed(envelope({ [body]: {} }), 'ingress'), body).toBe(false);
    }
    expect(allowed(envelope({ kvsRequest: { kind: pb.RequestKind.GET, fromReplica: true, tuples: [{ key: 'k' }] } }), 'ingress')).toBe(false);
  });

  it('each role sends only its own traffic', () => {
    expect(allowed(envelope({ nodeJoin: {} }), 'storage')).toBe(true);
    expect(allowed(envelope({ nodeJoin: {} }), 'executor')).toBe(false);
    expect(allowed(envelope({ executorStatus: {} }), 'executor')).toBe(true);
    expect(allowed(envelope({ executorStatus: {} }), 'storage')).toBe(false);
    expect(allowed(envelope({ prepare: {} }), 'scheduler')).toBe(true);
    expect(allowed(envelope({ prepare: {} }), 'executor')).toBe(false);
    expect(allowed(envelope({ gossip: {} }), 'routing')).toBe(false);
    expect(allowed(envelope({ gossip: {} }), 'storage')).toBe(true);
    expect(allowed(envelope({ pinCounts: {} }), 'monitor')).toBe(true);
    expect(allowed(envelope({ pinCounts: {} }), 'scheduler')).toBe(false);
    expect(allowed(envelope({ pinCounts: {} }), 'executor')).toBe(false);
  });

  it('a client\'s request with a member\'s powers is refused: a replica write, a ring change, a scheduler-placed schedule', () => {
    expect(allowed(envelope({ kvsRequest: { kind: pb.RequestKind.GET, fromReplica: true, tuples: [{ key: 'k' }] } }), 'client')).toBe(false);
    expect(allowed(envelope({ kvsRequest: { kind: pb.RequestKind.GET, fromReplica: true, tuples: [{ key: 'k' }] } }), 'storage')).toBe(true);
    expect(allowed(envelope({ ringUpdate: { replication: [{ key: 'k', global: 3 }] } }), 'client')).toBe(true);
    expect(allowed(envelope({ ringUpdate: { nodes: [{ id: 'x' }] } }), 'client')).toBe(false);
    expect(allowed(envelope({ ringUpdate: { epoch: 5 } }), 'client')).toBe(false);
    expect(allowed(envelope({ ringUpdate: { defaultGlobal: 1 } }), 'client')).toBe(false);
    expect(allowed(envelope({ schedule: { runId: 'r' } }), 'client')).toBe(true);
    expect(allowed(envelope({ schedule: { runId: 'r', scheduler: 'tcp://127.0.0.1:1' } }), 'client')).toBe(false);
    expect(allowed(envelope({ schedule: { runId: 'r', scheduler: 'tcp://127.0.0.1:1' } }), 'scheduler')).toBe(true);
  });

  it('system keys are written only by the roles that own them; anyone may read them', () => {
    for (const key of ['lfaas/function/f@1', 'lfaas/functions', 'lfaas/dag/d', 'lfaas/dags']) {
      for (const kind of [pb.RequestKind.PUT, pb.RequestKind.DELETE]) {
        expect(allowed(put(key, kind), 'scheduler'), key).toBe(true);
        expect(allowed(put(key, kind), 'storage'), key).toBe(true);
        expect(allowed(put(key, kind), 'executor'), key).toBe(false);
        expect(allowed(put(key, kind), 'client'), key).toBe(false);
      }
      expect(allowed(put(key, pb.RequestKind.GET), 'client')).toBe(true);
    }
    for (const key of ['lfaas/result/c1', 'lfaas/exec/c1', 'lfaas/anything']) {
      expect(allowed(put(key), 'executor'), key).toBe(true);
      expect(allowed(put(key), 'scheduler'), key).toBe(true);
      expect(allowed(put(key), 'client'), key).toBe(false);
      expect(allowed(put(key), 'routing'), key).toBe(false);
    }
    // One system key among ordinary ones refuses the whole request.
    expect(allowed(envelope({ kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key: 'a' }, { key: 'lfaas/functions' }, { key: 'b' }] } }), 'client')).toBe(false);
    expect(allowed(put('lfaas-not-system/x'), 'client')).toBe(true);
    expect(allowed(put('user/lfaas/x'), 'client')).toBe(true);
  });
});
