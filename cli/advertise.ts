/**
 * `--advertise`: the host a role's sockets announce (in ring joins, executor statuses, reply
 * addresses and ready lines), when it differs from the interface bound with `--host`: a machine
 * behind NAT, or a wildcard bind. bindTransport does the rest (protocol/bind-transport.ts);
 * docs/multi-host.md explains when to use which.
 */

/** The `advertise` option for bindTransport and the clients, when the command line gave one. */
export function advertised(options: { readonly advertise?: string | undefined }): { advertise?: string } {
  return options.advertise === undefined || options.advertise === '' ? {} : { advertise: options.advertise };
}
