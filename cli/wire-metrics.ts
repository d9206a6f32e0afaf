/**
 * The wire's counters as Prometheus series, for every role process that serves metrics: frames in,
 * frames rejected (they did not decode or validate) and refused (beyond their peer's share of the
 * inbox), error answers, failed and refused sends, destination sockets evicted and open, and inbox
 * turns deferred. Labelled with the socket's address, and the
 * shard where a node has several.
 */
import type { MetricSample } from '../kvs/index.js';
import { zapCounters } from '../protocol/index.js';
import type { ShellCounters, TransportCounters } from '../protocol/index.js';

/** What one socket's shell and transport counted (plain numbers, so a worker thread can post them). */
export interface WireCounters {
  readonly shell: Readonly<ShellCounters>;
  readonly transport?: Readonly<TransportCounters> & { readonly sockets: number; readonly deferred: number };
}

/** A snapshot of a shell and its ZeroMQ transport. */
export function wireCountersOf(shell: { readonly counters: ShellCounters }, transport?: { readonly counters: TransportCounters; readonly socketCount: number; readonly inboxCounters: { readonly deferred: number } }): WireCounters {
  return {
    shell: { ...shell.counters },
    ...(transport === undefined ? {} : { transport: { ...transport.counters, sockets: transport.socketCount, deferred: transport.inboxCounters.deferred } }),
  };
}

const counter = (name: string, help: string, value: number, labels: Readonly<Record<string, string>>): MetricSample => ({ name, help, type: 'counter', value, labels });

/** The series of one socket. */
export function wireSamples(counters: WireCounters, labels: Readonly<Record<string, string>>): MetricSample[] {
  const { shell, transport } = counters;
  const samples = [
    counter('lfaas_wire_frames_received_total', 'Frames handed to the node (decoded or not).', shell.framesIn, labels),
    counter('lfaas_wire_frames_rejected_total', 'Frames that did not decode or validate (answered with PROTO_* when they named a reply address).', shell.framesRejected, labels),
    counter('lfaas_wire_frames_refused_total', 'Frames refused because their connection was over its share of the inbox.', shell.framesRefused, labels),
    counter('lfaas_wire_error_replies_total', 'Typed error answers sent to rejected or refused frames.', shell.errorsReplied, labels),
    counter('lfaas_wire_frames_unauthorised_total', 'Frames refused UNAUTHORISED: a sender\'s key that may not send them (not a member, or a member of another role), or a client\'s token that is missing, invalid or does not reach what the request names.', shell.framesUnauthorised, labels),
    counter('lfaas_wire_sends_failed_total', 'Sends the transport refused or lost (bad address, full queue, socket evicted).', shell.sendsFailed, labels),
  ];
  if (transport !== undefined) {
    samples.push(
      counter('lfaas_wire_frames_unsealed_total', 'Frames dropped because their message\'s seal proved no sender (secure transports).', transport.framesUnsealed, labels),
      counter('lfaas_wire_sockets_evicted_total', 'Destination sockets closed to make room for another (the least recently used).', transport.socketsEvicted, labels),
      counter('lfaas_wire_inbox_turns_deferred_total', 'Times handling frames was cut at the turn budget and resumed on the next turn.', transport.deferred, labels),
      { name: 'lfaas_wire_destination_sockets', help: 'Destination sockets open.', type: 'gauge', value: transport.sockets, labels },
    );
  }
  return samples;
}

/** The process's CURVE handshakes as its ZAP handler judged them (one handler per process). */
export function zapSamples(labels: Readonly<Record<string, string>>): MetricSample[] {
  return [
    counter('lfaas_wire_handshakes_accepted_total', 'CURVE handshakes whose client key the ZAP handler let in.', zapCounters.accepted, labels),
    counter('lfaas_wire_handshakes_refused_total', 'CURVE handshakes refused by the ZAP handler (a revoked key).', zapCounters.refused, labels),
  ];
}
