/**
 * The one rule for transport addresses. Every address a node may send to (an envelope's `reply_to`,
 * a ring's node and shard addresses, a schedule's executors...) is checked by `isTransportAddress`
 * when its frame is decoded (validate.ts, the schema type `address`), and the ZeroMQ transport
 * connects only to what `parseTcpAddress` accepts: the same rule, so an address that passed
 * decoding never makes ZeroMQ's `connect()` throw.
 *
 * ZeroMQ's own parser is both looser and stricter than one would guess (measured with libzmq
 * 4.3.5): it throws EINVAL synchronously for `tcp://*:5555`, `tcp://-:1`, `tcp://é:1` or
 * `tcp://_x:1`, and accepts `tcp://127.0.0.1:0`, `tcp://:1` or `tcp://a:b:1`. So we accept only
 * what a peer can really be reached at:
 * - `tcp://<host>:<port>[#<key>]`, the port 1..65535 in plain decimal, the key (the public key of
 *   the endpoint's CURVE server socket, 43 characters of base64url: keys.ts) there unless the
 *   cluster runs insecure, the host one of
 *   - an IPv4 address in dotted decimal (each part 0..255, no leading zeros), not 0.0.0.0;
 *   - an IPv6 address in brackets (hex digits, colons, an optional dotted IPv4 tail), not [::];
 *   - a DNS name: labels of letters, digits and hyphens, 1..63 characters, not starting or ending
 *     with a hyphen, 253 characters in all at most;
 * - `mem://<name>`, the in-memory network of tests and the simulator (letters, digits and
 *   `._:-`; the ZeroMQ transport refuses it with a typed error).
 *
 * An ingress is reached over HTTP, not by a node: what it announces (discovery.proto) is a URL,
 * `http(s)://<host>[:<port>][/<path>]`, the host by the same rule, checked by `isServiceUrl`.
 */

/** The longest address accepted: a DNS name of 253 characters, the scheme, a port and a key. */
export const ADDRESS_LENGTH_MAX = 316;

const TCP = /^tcp:\/\/(\[[0-9A-Fa-f:.]{2,45}\]|[0-9A-Za-z.-]{1,253}):([1-9][0-9]{0,4})(?:#([A-Za-z0-9_-]{43}))?$/;
const IPV4 = /^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$/;
const LABEL = /^[0-9A-Za-z](?:[0-9A-Za-z-]{0,61}[0-9A-Za-z])?$/;
const MEMORY = /^mem:\/\/[0-9A-Za-z._:-]{1,200}$/;
/** The base64url characters whose two low bits are zero. */
const CANONICAL_LAST = 'AEIMQUYcgkosw048';

/** A `tcp://` address split into its parts. */
export interface TcpAddress {
  readonly host: string;
  readonly port: number;
  /** The endpoint's public key (its 43-character text, keys.ts), when the address names one. */
  readonly key?: string;
}

/**
 * The host and port of a `tcp://host:port` address that ZeroMQ can connect to, or undefined.
 *
 * @example
 * ```ts
 * parseTcpAddress('tcp://127.0.0.1:7000'); // { host: '127.0.0.1', port: 7000 }
 * parseTcpAddress('tcp://*:5555');         // undefined (a bind wildcard, not a peer)
 * parseTcpAddress('tcp://10.0.0.7:7000#' + keyText(key)); // { host: '10.0.0.7', port: 7000, key: keyText(key) }
 * ```
 */
export function parseTcpAddress(address: string): TcpAddress | undefined {
  if (address.length > ADDRESS_LENGTH_MAX) return undefined;
  const match = TCP.exec(address);
  if (match === null) return undefined;
  const host = match[1]!;
  const port = Number(match[2]);
  if (port > 65535 || !isHost(host)) return undefined;
  if (match[3] === undefined) return { host, port };
  // 32 bytes in 43 characters: the last one carries 4 bits, its 2 low bits zero (one text per key).
  if (!CANONICAL_LAST.includes(match[3][42]!)) return undefined;
  return { host, port, key: match[3] };
}

/**
 * Whether `address` is one a node may send to: a `tcp://` address of {@link parseTcpAddress}, or a
 * `mem://` name of the in-memory network.
 *
 * @example
 * ```ts
 * isTransportAddress('tcp://node-1.cluster.local:7100'); // true
 * isTransportAddress('tcp://127.0.0.1:0');               // false
 * ```
 */
export function isTransportAddress(address: string): boolean {
  if (KNOWN_GOOD.has(address)) return true;
  const good = address.startsWith('mem://') ? MEMORY.test(address) : parseTcpAddress(address) !== undefined;
  if (good) {
    // Every message names its reply address, and a node hears from the same few peers again and
    // again: a set lookup instead of the regular expressions (a profiled hot spot). Bounded: a
    // flood of distinct addresses empties it and costs only the parsing it saved.
    if (KNOWN_GOOD.size >= KNOWN_GOOD_MAX) KNOWN_GOOD.clear();
    KNOWN_GOOD.add(address);
  }
  return good;
}

/** Addresses {@link isTransportAddress} accepted lately, at most KNOWN_GOOD_MAX of them. */
const KNOWN_GOOD = new Set<string>();
const KNOWN_GOOD_MAX = 4096;

const HTTP_URL = /^https?:\/\/(\[[0-9A-Fa-f:.]{2,45}\]|[0-9A-Za-z.-]{1,253})(?::([1-9][0-9]{0,4}))?(\/[0-9A-Za-z._~\/-]{0,200})?$/;

/**
 * Whether `url` is an HTTP(S) URL a caller can reach: `http(s)://<host>[:<port>][/<path>]`, the
 * host as in a transport address (no wildcard), the port 1..65535, no query, user or fragment,
 * {@link ADDRESS_LENGTH_MAX} characters at most. What an ingress announces itself at.
 *
 * @example
 * ```ts
 * isServiceUrl('http://10.0.0.7:8080'); // true
 * isServiceUrl('http://0.0.0.0:8080');  // false (a bind wildcard, not a place to call)
 * ```
 */
export function isServiceUrl(url: string): boolean {
  if (url.length > ADDRESS_LENGTH_MAX) return false;
  const match = HTTP_URL.exec(url);
  if (match === null) return false;
  if (match[2] !== undefined && Number(match[2]) > 65535) return false;
  return isHost(match[1]!);
}

function isHost(host: string): boolean {
  if (host.startsWith('[')) return isIpv6(host.slice(1, -1));
  if (IPV4.test(host)) return host !== '0.0.0.0' && host.split('.').every((part) => Number(part) <= 255);
  // Not a dotted quad: a DNS name (a name whose labels are all digits is a malformed IPv4 address).
  const labels = host.split('.');
  if (labels.every((label) => /^[0-9]+$/.test(label))) return false;
  return labels.every((label) => LABEL.test(label));
}

function isIpv6(text: string): boolean {
  // At most one '::', 8 groups of 1..4 hex digits (or 6 and a dotted IPv4 tail); not the unspecified [::].
  if (text.split('::').length > 2) return false;
  let groups = text.split(':').filter((group) => group !== '');
  const tail = groups.at(-1);
  let count = 0;
  if (tail !== undefined && tail.includes('.')) {
    if (!IPV4.test(tail) || !tail.split('.').every((part) => Number(part) <= 255)) return false;
    groups = groups.slice(0, -1);
    count = 2;
  }
  if (!groups.every((group) => /^[0-9A-Fa-f]{1,4}$/.test(group))) return false;
  count += groups.length;
  const compressed = text.includes('::');
  if (compressed ? count > 7 : count !== 8) return false;
  return !/^[0:]*$/.test(text);
}
