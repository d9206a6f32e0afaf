/**
 * The second wall of the sandbox: a sandbox process whose JavaScript layer is assumed broken. Each
 * test starts a process exactly as the executor's pool does (the same command, node flags, user
 * and bubblewrap arguments: executor/isolation.ts) but running probe code (`-e`) in place of the
 * runtime bundle, and checks what Node's permission model, the unprivileged user and (at `bwrap`)
 * the namespaces refuse: processes, threads, addons, file writes and reads, the network, signals
 * to the executor. The first wall (the realm) is test/escape.test.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { detectIsolation, sandboxCommand } from '../executor/index.js';

const detected = await detectIsolation();
const level: 'process' | 'bwrap' = detected.level === 'bwrap' ? 'bwrap' : 'process';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface ProbeOutcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Starts a sandbox process exactly as the pool does, but running `probe` (`-e`) in place of the runtime bundle. */
function runCompromised(probe: string, timeoutMs = 10_000): Promise<ProbeOutcome> {
  const command = sandboxCommand(level, 64);
  // The last argument is the bundle path: the node flags before it (permission model, heap...) stay.
  const args = [...command.args.slice(0, -1), '-e', probe];
  return new Promise((resolve, reject) => {
    const child = spawn(command.command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: {}, ...(command.uid === undefined ? {} : { uid: command.uid, gid: command.gid }) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code, signal });
    });
  });
}

/** Probe code: runs named attempts, prints `{ name: { ok } | { code, message } }` as JSON. */
const PROBE_HELPERS = String.raw`
const out = {};
const tryIt = (name, f) => { try { out[name] = { ok: f() }; } catch (e) { out[name] = { code: e && e.code, message: String(e && e.message).slice(0, 200) }; } };
const builtin = (name) => process.getBuiltinModule(name);
`;

function parseProbe(outcome: ProbeOutcome): Record<string, { ok?: unknown; code?: string; message?: string }> {
  expect(outcome.code, outcome.stderr).toBe(0);
  return JSON.parse(outcome.stdout) as Record<string, { ok?: unknown; code?: string; message?: string }>;
}

describe(`second wall: a compromised sandbox process (isolation ${level})`, () => {
  it('cannot start processes, threads or addons (ERR_ACCESS_DENIED)', async () => {
    const probe = `${PROBE_HELPERS}
tryIt('execSync', () => String(builtin('child_process').execSync('id')));
tryIt('spawnSync', () => String(builtin('child_process').spawnSync('/bin/sh', ['-c', 'id']).stdout));
tryIt('fork', () => builtin('child_process').fork('/bin/true').pid);
tryIt('worker', () => { new (builtin('worker_threads').Worker)('1', { eval: true }); return 'started'; });
tryIt('dlopen', () => { process.dlopen({ exports: {} }, '/usr/lib/x86_64-linux-gnu/libc.so.6'); return 'loaded'; });
tryIt('binding', () => typeof process.binding('spawn_sync'));
process.stdout.write(JSON.stringify(out));`;
    const result = parseProbe(await runCompromised(probe));
    for (const name of ['execSync', 'spawnSync', 'fork', 'worker', 'binding']) expect(result[name], name).toMatchObject({ code: 'ERR_ACCESS_DENIED' });
    // Addons: the permission model refuses them with a code of their own.
    expect(['ERR_ACCESS_DENIED', 'ERR_DLOPEN_DISABLED']).toContain(result['dlopen']?.code);
  });

  it('cannot write or read files beyond its bundle (ERR_ACCESS_DENIED)', async () => {
    const target = join(tmpdir(), `lfaas-escape-write-${process.pid}`);
    const testFile = fileURLToPath(import.meta.url);
    const probe = `${PROBE_HELPERS}
const fs = builtin('fs');
tryIt('write', () => fs.writeFileSync(${JSON.stringify(target)}, 'escaped'));
tryIt('readHostname', () => fs.readFileSync('/etc/hostname', 'utf8'));
tryIt('readPasswd', () => fs.readFileSync('/etc/passwd', 'utf8'));
tryIt('readTestFile', () => fs.readFileSync(${JSON.stringify(testFile)}, 'utf8').length);
tryIt('readEnviron', () => fs.readFileSync('/proc/1/environ', 'utf8'));
tryIt('readdirRoot', () => fs.readdirSync('/'));
tryIt('fsBinding', () => typeof process.binding('fs'));
process.stdout.write(JSON.stringify(out));`;
    try {
      const result = parseProbe(await runCompromised(probe));
      for (const name of ['write', 'readHostname', 'readPasswd', 'readTestFile', 'readEnviron', 'readdirRoot', 'fsBinding']) expect(result[name], name).toMatchObject({ code: 'ERR_ACCESS_DENIED' });
      expect(existsSync(target)).toBe(false);
    } finally {
      rmSync(target, { force: true });
    }
  });

  it.skipIf(level !== 'bwrap')('bwrap: no network (a connection to a listener of the executor on 127.0.0.1 fails)', async () => {
    const server = createServer();
    let connections = 0;
    server.on('connection', (socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const probe = `
const net = process.getBuiltinModule('net');
const done = (result) => { process.stdout.write(JSON.stringify(result)); process.exit(0); };
const socket = net.connect(${port}, '127.0.0.1');
socket.on('connect', () => done({ connected: true }));
socket.on('error', (e) => done({ connected: false, code: e.code }));
setTimeout(() => done({ connected: false, code: 'timeout' }), 3000);`;
    try {
      const outcome = await runCompromised(probe);
      const result = JSON.parse(outcome.stdout) as { connected: boolean; code?: string };
      expect(result.connected).toBe(false);
      await sleep(50);
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it.skipIf(!isRoot && level !== 'bwrap')('runs as an unprivileged user (uid 65534 when the executor is root) that cannot signal the executor', async () => {
    const probe = `${PROBE_HELPERS}
tryIt('uid', () => process.getuid());
tryIt('gid', () => process.getgid());
tryIt('signalExecutor', () => process.kill(${process.pid}, 0));
tryIt('signalInit', () => process.kill(1, 0) && 'signalled pid 1');
tryIt('setuid', () => { process.setuid(0); return process.getuid(); });
process.stdout.write(JSON.stringify(out));`;
    const result = parseProbe(await runCompromised(probe));
    if (isRoot) expect(result['uid']).toEqual({ ok: 65534 });
    expect(result['uid']?.ok).not.toBe(0);
    // Another user's process (EPERM), or not even visible in its PID namespace (ESRCH).
    expect(['EPERM', 'ESRCH']).toContain(result['signalExecutor']?.code);
    expect(result['setuid']?.ok).not.toBe(0);
  });
});
