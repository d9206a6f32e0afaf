/**
 * Safe defaults of the role processes (built CLI, real processes): each binds loopback unless
 * told otherwise, and binding another interface needs `--insecure` (the cluster has no
 * authentication or encryption yet), which then warns at every start. Nothing here sends traffic
 * beyond 127.0.0.1: the accepted case binds 0.0.0.0 and is stopped once ready.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, startProcess, stopProcess } from './cluster.js';

describe('bind defaults', () => {
  it('refuses a non-loopback --host without --insecure, for every role, before binding anything', () => {
    const roles = [
      ['routing'],
      ['scheduler', '--routing', 'tcp://127.0.0.1:1'],
      ['executor', '--routing', 'tcp://127.0.0.1:1', '--schedulers', 'tcp://127.0.0.1:2'],
      ['kvs', '--id', 'n1', '--routing', 'tcp://127.0.0.1:1'],
    ];
    for (const role of roles) {
      const run = spawnSync(process.execPath, [CLI, ...role, '--host', '0.0.0.0'], { encoding: 'utf8', timeout: 20_000 });
      expect(run.status, `${role[0]}: ${run.stderr}`).not.toBe(0);
      expect(run.stderr).toContain('--insecure');
      expect(run.stdout).not.toContain('"role"');
    }
  });

  it('accepts loopback addresses as they are, and another interface with --insecure and a warning', async () => {
    const loopback = await startProcess(['routing', '--host', '127.0.0.1']);
    expect(loopback.stderr.some((line) => line.includes('WARNING'))).toBe(false);
    await stopProcess(loopback);
    const exposed = await startProcess(['routing', '--host', '0.0.0.0', '--insecure']);
    try {
      expect(exposed.stderr.some((line) => line.includes('WARNING: --insecure'))).toBe(true);
    } finally {
      await stopProcess(exposed);
    }
  }, 30_000);
});
