/**
 * What an ingress may announce (address.ts `isServiceUrl`, the schema's `endpoint`): an http(s) URL
 * with a reachable host (no wildcard), an optional port 1..65535 and path; nothing a caller could
 * not call, and no transport address.
 */
import { describe, expect, it } from 'vitest';
import { ADDRESS_LENGTH_MAX, isServiceUrl, isTransportAddress } from './address.js';

describe('isServiceUrl', () => {
  it('accepts http(s) URLs of reachable hosts', () => {
    for (const url of ['http://10.0.0.7:8080', 'https://ingress.example.com', 'http://[::1]:7080', 'https://a-b.example:443/lfaas', 'http://127.0.0.1:1']) {
      expect(isServiceUrl(url), url).toBe(true);
      expect(isTransportAddress(url), url).toBe(false);
    }
  });

  it('refuses wildcards, bad ports, other schemes, queries, users and overlong URLs', () => {
    const refused = [
      'http://0.0.0.0:8080', 'http://[::]:8080', 'http://*:8080', 'http://10.0.0.7:0', 'http://10.0.0.7:65536', 'http://10.0.0.7:08080',
      'tcp://10.0.0.7:8080', 'ftp://10.0.0.7', 'http://', 'http://10.0.0.7:8080?x=1', 'http://user@10.0.0.7', 'http://10.0.0.7#frag',
      'http://999.1.1.1', 'http://-bad.example', 'http://exa mple.com', `http://${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com/${'p'.repeat(60)}`,
    ];
    for (const url of refused) expect(isServiceUrl(url), url).toBe(false);
    expect(`http://${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com/${'p'.repeat(60)}`.length).toBeGreaterThan(ADDRESS_LENGTH_MAX);
  });
});
