/**
 * Discovery through a routing node (routing.ts, discovery.proto): announced services are listed
 * by role until their TTL passes without another announcement, a departing one at once; the list
 * is bounded; who may announce what is message-rights.ts's business (tested there).
 */
import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, pb } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import { RoutingNode } from './routing.js';

const message = (envelope: PbTypes.IEnvelope) => ({ kind: 'message' as const, envelope: decodeEnvelope(encodeEnvelope(envelope)) });
const SCHEDULER = pb.ServiceRole.SERVICE_SCHEDULER;
const MONITOR = pb.ServiceRole.SERVICE_MONITOR;
const INGRESS = pb.ServiceRole.SERVICE_INGRESS;

/** The ServiceList a routing node answers a services request with at `nowMs`. */
function listAt(routing: RoutingNode, nowMs: number): PbTypes.IServiceList {
  const effects = routing.handle(message({ requestId: 7, replyTo: 'mem://client', servicesRequest: {} }), nowMs);
  const reply = effects.find((effect): effect is Extract<Effect, { kind: 'send' }> => effect.kind === 'send' && effect.to === 'mem://client');
  return reply!.envelope.serviceList!;
}

const announce = (routing: RoutingNode, nowMs: number, role: number, address: string, ttlMs: number, departing = false): readonly Effect[] =>
  routing.handle(message({ ...(address.startsWith('http') ? {} : { sender: address }), serviceAnnounce: { role, address, ttlMs, departing } }), nowMs);

/** The error code a routing node answers an announcement sent as a request with. */
function refusalCode(routing: RoutingNode, role: number, address: string): number | undefined {
  let input;
  try {
    input = message({ requestId: 9, replyTo: 'mem://asker', serviceAnnounce: { role, address, ttlMs: 1000 } });
  } catch (error) {
    return pb.ErrorCode[(error as { code: string }).code as keyof typeof pb.ErrorCode]; // refused at decoding (validate.ts `endpoint`)
  }
  const effects = routing.handle(input, 0);
  const reply = effects.find((effect): effect is Extract<Effect, { kind: 'send' }> => effect.kind === 'send' && effect.to === 'mem://asker');
  return reply?.envelope.errorReply?.error?.code ?? undefined;
}

describe('routing node: service discovery', () => {
  it('lists announced services by role, sorted, until their TTL passes without another announcement', () => {
    const routing = new RoutingNode({ address: 'mem://routing' });
    routing.handle({ kind: 'start' }, 0);
    expect(announce(routing, 0, SCHEDULER, 'mem://s2', 1000)).toEqual([]); // one-way: no answer
    announce(routing, 0, SCHEDULER, 'mem://s1', 1000);
    announce(routing, 0, MONITOR, 'mem://m1', 1000);
    expect(listAt(routing, 10)).toMatchObject({ schedulers: ['mem://s1', 'mem://s2'], monitors: ['mem://m1'] });
    // s1 keeps announcing, s2 and m1 go silent.
    announce(routing, 800, SCHEDULER, 'mem://s1', 1000);
    routing.handle({ kind: 'timer', timer: 'check' }, 1500);
    const later = listAt(routing, 1500);
    expect(later.schedulers).toEqual(['mem://s1']);
    expect(later.monitors ?? []).toEqual([]);
  });

  it('unlists a departing service at once, and bounds TTLs and the number listed', () => {
    const routing = new RoutingNode({ address: 'mem://routing', servicesMax: 2, serviceTtlMaxMs: 5000 });
    announce(routing, 0, SCHEDULER, 'mem://s1', 4_000_000_000);
    announce(routing, 0, SCHEDULER, 'mem://s2', 1000);
    // A third is refused (KVS_BUSY to a request; a one-way announcement is just dropped).
    const refused = routing.handle(message({ requestId: 3, replyTo: 'mem://s3', serviceAnnounce: { role: SCHEDULER, address: 'mem://s3', ttlMs: 1000 } }), 0);
    expect(refused[0]).toMatchObject({ kind: 'send', to: 'mem://s3' });
    expect((refused[0] as Extract<Effect, { kind: 'send' }>).envelope.errorReply?.error?.code).toBe(pb.ErrorCode.KVS_BUSY);
    expect(listAt(routing, 1).schedulers).toEqual(['mem://s1', 'mem://s2']);
    announce(routing, 2, SCHEDULER, 'mem://s2', 1000, true);
    expect(listAt(routing, 3).schedulers).toEqual(['mem://s1']);
    // A TTL of ~46 days is cut to serviceTtlMaxMs.
    expect(listAt(routing, 5001).schedulers ?? []).toEqual([]);
  });

  it('lists an ingress by its HTTP URL; each role announces its own kind of address', () => {
    const routing = new RoutingNode({ address: 'mem://routing' });
    routing.handle({ kind: 'start' }, 0);
    announce(routing, 0, INGRESS, 'http://10.0.0.7:8080', 1000);
    announce(routing, 0, INGRESS, 'https://ingress.example.com', 1000);
    expect(listAt(routing, 1)).toMatchObject({ ingresses: ['http://10.0.0.7:8080', 'https://ingress.example.com'] });
    // An ingress is not a node (no transport address), a scheduler not an HTTP service; a bind wildcard is no place to call.
    expect(refusalCode(routing, INGRESS, 'tcp://10.0.0.7:8080')).toBe(pb.ErrorCode.PROTO_MALFORMED);
    expect(refusalCode(routing, INGRESS, 'http://0.0.0.0:8080')).toBe(pb.ErrorCode.PROTO_MALFORMED);
    expect(refusalCode(routing, SCHEDULER, 'http://10.0.0.7:8080')).toBe(pb.ErrorCode.PROTO_MALFORMED);
    expect(listAt(routing, 1).schedulers ?? []).toEqual([]);
    // A departure of another role does not unlist it; its own does.
    announce(routing, 2, SCHEDULER, 'http://10.0.0.7:8080', 1000, true);
    expect(listAt(routing, 3).ingresses).toContain('http://10.0.0.7:8080');
    announce(routing, 4, INGRESS, 'http://10.0.0.7:8080', 1000, true);
    expect(listAt(routing, 5).ingresses).toEqual(['https://ingress.example.com']);
  });
});
