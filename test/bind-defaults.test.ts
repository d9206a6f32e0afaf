/**
 * Safe defaults of the role processes (built CLI, real processes): security is on unless
 * `--insecure` says otherwise. A role without `--keys` does not start; `--insecure` (plain ZeroMQ,
 * nobody authenticated) binds loopback only and warns at every start; with keys a role may bind
 * another interface. Nothing here sends traffic beyond 127.0.0.1: the accepted case binds 0.0.0.0
 * and is stopped once ready.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, startProcess, stopProcess, testKeysFolder } from './cluster.js';

const ROLES = [
  ['routing'],
  ['scheduler', '--routing', 'tcp://127.0.0.1:1'],
  ['executor', '--routing', 'tcp://127.0.0.1:1', '--schedulers', 'tcp://127.0.0.1:2'],
  ['kvs', '--id', 'n1', '--routing', 'tcp://127.0.0.1:1'],
];

const run = (args: readonly string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, LFAAS_KEYS: '' } });

describe('security defaults', () => {
  it('every role refuses to start without --keys or --insecure, before binding anything', () => {
    for (const role of ROLES) {
      const started = run(role);
      expect(started.status, `${role[0]}: ${started.stderr}`).not.toBe(0);
      expect(started.stderr).toContain('--keys');
      expect(started.stderr).toContain('--insecure');
      expect(started.stdout).not.toContain('"role"');
    }
  });

  it('--insecure never binds beyond loopback, for every role', () => {
    for (const role of ROLES) {
      const started = run([...role, '--insecure', '--host', '0.0.0.0']);
      expect(started.status, `${role[0]}: ${started.stderr}`).not.toBe(0);
      expect(started.stderr).toContain('binding elsewhere needs --keys');
      expect(started.stdout).not.toContain('"role"');
    }
  });

  it('a key that is not a member of the role is refused at start', () => {
    const started = run(['routing', '--keys', testKeysFolder(), '--key-name', 'executor']);
    expect(started.status).not.toBe(0);
    expect(started.stderr).toContain('executor.key is a executor member, not a routing one');
  });

  it('with keys: loopback with no warning, another interface allowed; --insecure on loopback warns', async () => {
    const loopback = await startProcess(['routing', '--host', '127.0.0.1']);
    expect(loopback.stderr.some((line) => line.includes('WARNING'))).toBe(false);
    expect(String(loopback.ready['address'])).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+#[A-Za-z0-9_-]{43}$/);
    await stopProcess(loopback);
    const exposed = await startProcess(['routing', '--host', '0.0.0.0']);
    expect(exposed.stderr.some((line) => line.includes('WARNING'))).toBe(false);
    await stopProcess(exposed);
    const plain = await startProcess(['routing', '--insecure']);
    try {
      expect(plain.stderr.some((line) => line.includes('WARNING: --insecure'))).toBe(true);
      expect(String(plain.ready['address'])).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await stopProcess(plain);
    }
  }, 30_000);
});
