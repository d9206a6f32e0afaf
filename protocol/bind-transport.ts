/**
 * Which transport a process's nodes and clients bind: `net` (net-transport.ts: TCP from the event
 * loop, TLS-PSK when secure) or `zmq` (zmq-transport.ts: ZeroMQ with CURVE). Both take the same
 * options, speak addresses of the same form (`tcp://host:port#key`) and keep the same contract, but
 * not the same bytes: every process of a cluster, its clients included, must use the same one.
 * The environment variable LFAAS_TRANSPORT chooses (children inherit it); `net` by default.
 */
import { NetTransport } from './net-transport.js';
import type { NetTransportOptions } from './net-transport.js';
import { ZmqTransport } from './zmq-transport.js';

/** A node's or client's transport, of either kind: both expose the same counters and surface. */
export type NodeTransport = NetTransport | ZmqTransport;

export const TRANSPORT_KINDS = ['net', 'zmq'] as const;
export type TransportKind = (typeof TRANSPORT_KINDS)[number];

/** The environment variable that chooses the transport. */
export const TRANSPORT_ENV = 'LFAAS_TRANSPORT';

/** The kind LFAAS_TRANSPORT names (`net` when unset); an unknown name is an error, not a silent default. */
export function transportKind(): TransportKind {
  const named = process.env[TRANSPORT_ENV];
  if (named === undefined || named === '') return 'net';
  if ((TRANSPORT_KINDS as readonly string[]).includes(named)) return named as TransportKind;
  throw new Error(`${TRANSPORT_ENV}=${JSON.stringify(named.slice(0, 40))}: expected one of ${TRANSPORT_KINDS.join(', ')}`);
}

/**
 * Binds this process's transport, of the kind {@link transportKind} names.
 *
 * @example
 * ```ts
 * const transport = await bindTransport({ host: '127.0.0.1', port: 0, keyPair });
 * ```
 */
export function bindTransport(options: NetTransportOptions = {}): Promise<NodeTransport> {
  return transportKind() === 'zmq' ? ZmqTransport.bind(options) : NetTransport.bind(options);
}
