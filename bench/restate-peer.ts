/**
 * Restate (a durable-execution engine) as a peer to measure against in the `compose`,
 * `concurrency` and `counter` benchmarks.
 *
 * What it does: installs, on first use and only then, `@restatedev/restate-server` (whose Linux
 * binary ships inside the npm package) and `@restatedev/restate-sdk` into the git-ignored folder
 * `bench/peers/restate/`; starts `restate-server` on 127.0.0.1 only, on free ports, with a
 * temporary data directory; starts a small Restate service deployment in its own Node process;
 * registers that deployment with the admin API; and calls its handlers over HTTP through the
 * ingress with a keep-alive agent.
 *
 * The deployment has two services and a virtual object. `LatticeBench.noop(x)` returns `x` (the
 * cost of one durable invocation). `LatticeBench.compose(x)` calls `LatticeMath.increment(x)` then
 * `LatticeMath.square(y)` with Restate's durable service-to-service calls, so it returns
 * `(x + 1) ** 2`: the counterpart of our DAG `square(increment(x))`. The virtual object
 * `LatticeCounter` (the `counter` benchmark) keeps a number in its state `count`: `add(n)` (an
 * exclusive handler: Restate runs one at a time per object key) reads it, adds `n`, sets it and
 * returns the new value; `get()` (a shared handler) returns it.
 *
 * Why this shape: the peer is Restate as a user would run it on one node (default durability,
 * default partitions), so the numbers compare like for like with our own functions; nothing is
 * a dependency of the project, and nothing runs until a benchmark asks for it.
 *
 * Things that are easy to get wrong, handled here:
 * - SDK 1.17 calls `Promise.withResolvers`, which Node 20 lacks; without the polyfill that the
 *   service file installs before it loads the SDK, every invocation throws and Restate retries it
 *   forever.
 * - Every wait (install, server start, admin API, registration, warm-up, each call, stop) is
 *   bounded in time.
 * - `restate-server` sends anonymous telemetry unless told not to: it is started with
 *   `disable-telemetry`. Version 1.7 also asks api.github.com for its latest release at every
 *   start, with no setting to turn that off: where `unshare` works (root), the server runs in a
 *   private mount namespace whose /etc/hosts points that name at 127.0.0.1, so nothing leaves the
 *   machine; elsewhere it makes one DNS look-up, said in the log. Everything else, the server's,
 *   the deployment's and this file's traffic, goes to 127.0.0.1. npm installs with
 *   `--ignore-scripts` so that a dependency's analytics postinstall does not run.
 * - Children are killed by pid (SIGTERM, then SIGKILL after 3 s) on `stop()`, and with SIGKILL
 *   if this process exits without calling it; the deployment also exits when its stdin closes.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { hasExited, killQuietly, waitForExit } from './harness/child-process.js';

/** A running Restate server with the benchmark deployment registered. */
export interface RestatePeer {
  /** `LatticeBench.noop(x)` through the ingress: one durable invocation that returns `x`. */
  noop(x: number): Promise<number>;
  /** `LatticeBench.compose(x)`: two durable service-to-service calls, `(x + 1) ** 2`. */
  compose(x: number): Promise<number>;
  /**
   * `LatticeCounter/<key>/add(n)`: adds `n` to the virtual object's state `count`, returns the new
   * value. Sent once (no retry on a reset socket, unlike the idempotent calls above: a resent add
   * could count twice), so a failure may or may not have counted.
   */
  counterAdd(key: string, n: number): Promise<number>;
  /** `LatticeCounter/<key>/get()`: the object's `count` (0 before the first add). */
  counterGet(key: string): Promise<number>;
  /** POST `body` (JSON text) to `/<service>/<handler>` through the ingress; resolves with the reply's body (JSON text), rejects unless 200. */
  post(path: string, body: string, timeoutMs?: number): Promise<string>;
  /** Kills the server and the deployment (SIGTERM, SIGKILL after 3 s) and removes the data dir. */
  stop(): Promise<void>;
  /** For example `restate-server 1.7.12, @restatedev/restate-sdk 1.17.2`. */
  readonly version: string;
  /** The server's and the deployment's pids (for their CPU use). */
  readonly pids: readonly number[];
}

const SERVER_VERSION = '1.7.12';
const SDK_VERSION = '1.17.2';
const HOST = '127.0.0.1';

const INSTALL_TIMEOUT_MS = 300_000;
const START_TIMEOUT_MS = 30_000;
const REGISTER_TIMEOUT_MS = 30_000;
const WARMUP_TIMEOUT_MS = 30_000;
const SERVICE_START_TIMEOUT_MS = 15_000;
const CALL_TIMEOUT_MS = 30_000;
const PROBE_TIMEOUT_MS = 2_000;
const POLL_INTERVAL_MS = 100;
const STOP_GRACE_MS = 3_000;
const START_ATTEMPTS = 3;
const OUTPUT_TAIL_CHARS = 4_000;

const here = dirname(fileURLToPath(import.meta.url));
// bench/restate-peer.ts runs from bench/; the build's dist/bench/restate-peer.js uses the
// repository's bench/ too, so both find the same install.
const benchDir = basename(dirname(here)) === 'dist' ? resolve(here, '..', '..', 'bench') : here;
const PEER_DIR = join(benchDir, 'peers', 'restate');

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------
// Install

function installedVersion(dir: string, name: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(dir, 'node_modules', ...name.split('/'), 'package.json'), 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string') return parsed.version;
  } catch {
    // not installed
  }
  return undefined;
}

/** The `restate-server` binary that the platform package ships. */
function serverBinary(dir: string): string {
  return join(dir, 'node_modules', '@restatedev', `restate-server-${platform()}-${arch()}`, 'bin', 'restate-server');
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isInstalled(dir: string): boolean {
  return (
    installedVersion(dir, '@restatedev/restate-server') === SERVER_VERSION &&
    installedVersion(dir, '@restatedev/restate-sdk') === SDK_VERSION &&
    isExecutable(serverBinary(dir))
  );
}

/** The environment for child processes, without variables that would change what they do. */
function cleanEnv(dropPrefixes: readonly string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!dropPrefixes.some((prefix) => key.toLowerCase().startsWith(prefix))) env[key] = value;
  }
  return env;
}

function runNpmInstall(dir: string): Promise<void> {
  // --prefix pins the install to this folder whatever the caller's npm_* variables say;
  // --ignore-scripts skips a dependency's analytics postinstall (the binary needs no script).
  const args = ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', dir];
  const env = { ...cleanEnv(['npm_']), SCARF_ANALYTICS: 'false' };
  return new Promise<void>((done, fail) => {
    execFile('npm', args, { cwd: dir, env, timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        done();
        return;
      }
      const output = `${stdout}\n${stderr}`.trim().slice(-OUTPUT_TAIL_CHARS);
      const why = error.killed ? `killed after ${INSTALL_TIMEOUT_MS / 1000} s` : (error.message.split('\n')[0] ?? 'failed');
      fail(new Error(`npm install in ${dir} failed (${why})${output === '' ? '' : `: ${output}`}`));
    });
  });
}

/** Installs the pinned server and SDK into `dir` unless they are there already; returns the binary. */
async function ensureInstalled(dir: string, log: (line: string) => void): Promise<string> {
  const binary = serverBinary(dir);
  if (isInstalled(dir)) return binary;
  mkdirSync(dir, { recursive: true });
  const manifest = {
    name: 'lfaas-bench-restate-peer',
    private: true,
    description: 'Installed on demand by bench/restate-peer.ts; not part of the project.',
    dependencies: { '@restatedev/restate-server': SERVER_VERSION, '@restatedev/restate-sdk': SDK_VERSION },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`restate: installing @restatedev/restate-server@${SERVER_VERSION} and @restatedev/restate-sdk@${SDK_VERSION} into ${dir} ...`);
  const started = performance.now();
  await runNpmInstall(dir);
  if (!isInstalled(dir)) {
    // npm does not repair a package whose files went missing: start again from nothing, once.
    log('restate: the install is incomplete; installing again from scratch');
    rmSync(join(dir, 'node_modules'), { recursive: true, force: true });
    rmSync(join(dir, 'package-lock.json'), { force: true });
    await runNpmInstall(dir);
  }
  if (!isInstalled(dir)) {
    throw new Error(
      existsSync(binary)
        ? `npm install finished but did not give @restatedev/restate-server@${SERVER_VERSION} and @restatedev/restate-sdk@${SDK_VERSION}`
        : `npm install finished but ${binary} is missing (does restate-server ship a build for ${platform()}-${arch()}?)`,
    );
  }
  log(`restate: installed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return binary;
}

// ---------------------------------------------------------------------------------------------
// The service deployment (written beside its node_modules so that the SDK import resolves)

const SERVICE_SOURCE = `// Written by bench/restate-peer.ts at run time; edit it there.
// Restate SDK 1.17 calls Promise.withResolvers, which Node 20 lacks: install it before the SDK loads
// (hence the dynamic imports below), or every invocation throws and is retried forever.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

const restate = await import('@restatedev/restate-sdk');
const http2 = await import('node:http2');

const math = restate.service({
  name: 'LatticeMath',
  handlers: {
    increment: async (_ctx, x) => x + 1,
    square: async (_ctx, y) => y * y,
  },
});

const bench = restate.service({
  name: 'LatticeBench',
  handlers: {
    noop: async (_ctx, x) => x,
    // Two durable calls, as our DAG square(increment(x)).
    compose: async (ctx, x) => {
      const client = ctx.serviceClient(math);
      const y = await client.increment(x);
      return await client.square(y);
    },
  },
});

// A counter the Restate way: a virtual object, whose exclusive handlers run one at a time per key.
const counter = restate.object({
  name: 'LatticeCounter',
  handlers: {
    add: async (ctx, n) => {
      const next = ((await ctx.get('count')) ?? 0) + n;
      ctx.set('count', next);
      return next;
    },
    get: restate.handlers.object.shared(async (ctx) => (await ctx.get('count')) ?? 0),
  },
});

// __EXTRA_SOURCE__
const server = http2.createServer(restate.createEndpointHandler({ services: [math, bench, counter /* __EXTRA_SERVICES__ */] }));
server.on('error', (error) => {
  console.error('restate service: ' + error.message);
  process.exit(1);
});
server.listen(0, '${HOST}', () => {
  console.log('ready ' + server.address().port);
});
// The parent holds our stdin: when it goes away, so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;

// ---------------------------------------------------------------------------------------------
// Child processes

interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** The last few KB of the child's stdout and stderr. */
  tail(): string;
  /** Undefined while running, else how it ended. */
  exitStatus(): string | undefined;
  /** SIGTERM, SIGKILL after 3 s, bounded waits; resolves once the child has exited. */
  stop(): Promise<void>;
}

/** Spawns a child that is drained, unref'd, and SIGKILLed if this process exits first. */
function startChild(name: string, command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; stdinPipe: boolean }): Child {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: [options.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stderr?.on('data', keep);
  // stdout is read line by line by whoever waits for a 'ready' line; keep it too.
  child.stdout?.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const killOnExit = (): void => killQuietly(pid, 'SIGKILL');
  process.on('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  // A forgotten child must not keep this process alive; the 'exit' hook above kills it.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as Socket | null)?.unref();

  let stopping: Promise<void> | undefined;
  return {
    name,
    pid,
    process: child,
    tail: () => output.trim(),
    exitStatus: () => {
      if (spawnError !== undefined) return `failed to start: ${spawnError.message}`;
      if (!hasExited(child)) return undefined;
      return child.signalCode !== null ? `killed by ${child.signalCode}` : `exited with ${child.exitCode}`;
    },
    stop: () => {
      stopping ??= (async () => {
        if (hasExited(child) || spawnError !== undefined) return;
        killQuietly(pid, 'SIGTERM');
        if (await waitForExit(child, STOP_GRACE_MS)) return;
        killQuietly(pid, 'SIGKILL');
        if (!(await waitForExit(child, STOP_GRACE_MS))) throw new Error(`${name} (pid ${pid}) did not exit after SIGKILL within ${STOP_GRACE_MS} ms`);
      })();
      return stopping;
    },
  };
}

/** Waits for a `ready <port>` line on the child's stdout. */
function waitForReadyLine(child: Child, timeoutMs: number): Promise<number> {
  const stdout = child.process.stdout;
  if (stdout === null) return Promise.reject(new Error(`${child.name} has no stdout`));
  return new Promise((done, fail) => {
    const lines = createInterface({ input: stdout });
    const finish = (result: { port: number } | { error: Error }): void => {
      clearTimeout(timer);
      lines.close();
      child.process.off('exit', onExit);
      if ('port' in result) done(result.port);
      else fail(result.error);
    };
    const onExit = (): void => finish({ error: new Error(`${child.name} ${child.exitStatus() ?? 'exited'} before it was ready: ${child.tail()}`) });
    const timer = setTimeout(() => finish({ error: new Error(`${child.name} was not ready within ${timeoutMs / 1000} s: ${child.tail()}`) }), timeoutMs);
    lines.on('line', (line) => {
      const match = /^ready (\d+)$/.exec(line.trim());
      if (match?.[1] !== undefined) finish({ port: Number(match[1]) });
    });
    child.process.once('exit', onExit);
    if (hasExited(child.process)) onExit();
  });
}

/** `count` distinct ports that were free on 127.0.0.1 a moment ago. */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((done, fail) => {
            server.once('error', fail);
            server.listen(0, HOST, () => done((server.address() as AddressInfo).port));
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((done) => (server.listening ? server.close(() => done()) : done()))));
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Reply {
  readonly status: number;
  readonly body: string;
}

function httpOnce(agent: Agent, port: number, method: 'GET' | 'POST', path: string, body: string | undefined, timeoutMs: number): Promise<Reply & { reused: boolean }> {
  return new Promise((done, fail) => {
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = request({ host: HOST, port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), reused: req.reusedSocket });
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        fail(Object.assign(error, { reused: req.reusedSocket }));
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} http://${HOST}:${port}${path} got no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      fail(Object.assign(error, { reused: req.reusedSocket }));
    });
    req.end(body);
  });
}

/** One request; retried once when a kept-alive socket turned out to be closed by the server. */
async function http(agent: Agent, port: number, method: 'GET' | 'POST', path: string, body: string | undefined, timeoutMs: number): Promise<Reply> {
  try {
    return await httpOnce(agent, port, method, path, body, timeoutMs);
  } catch (error) {
    const stale = (error as { reused?: boolean; code?: string }).reused === true && (error as { code?: string }).code === 'ECONNRESET';
    if (!stale) throw error;
    return await httpOnce(agent, port, method, path, body, timeoutMs);
  }
}

/** Calls `check` every 100 ms until it returns a value, or throws with the last reason after `timeoutMs`. */
async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, alive: () => string | undefined): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const dead = alive();
    if (dead !== undefined) throw new Error(`${what}: ${dead}`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = errorMessage(error);
    }
    if (performance.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s (last: ${last})`);
    await sleep(POLL_INTERVAL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Start and stop

interface Ports {
  readonly ingress: number;
  readonly admin: number;
  readonly node: number;
}

/** Host names that restate-server looks up on its own at start (its latest-release check). */
const PHONE_HOME_HOSTS = ['api.github.com'];
let canShieldHosts: boolean | undefined;

/**
 * restate-server 1.7 asks api.github.com for its latest release at every start, with no setting
 * to turn that off. Where this process may make a private mount namespace (root, `unshare`), the
 * server gets its own /etc/hosts that points that name at 127.0.0.1, so not even the DNS look-up
 * leaves the machine. Returns the command and arguments to run, and whether the shield is on.
 */
function shielded(binary: string, args: readonly string[], dataDir: string): { command: string; args: string[]; shielded: boolean } {
  const script = 'mount --bind "$0" /etc/hosts && exec "$@"';
  if (canShieldHosts === undefined) {
    try {
      const probe = join(dataDir, 'hosts-probe');
      writeFileSync(probe, '127.0.0.1 localhost\n');
      execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, probe, 'true'], { stdio: 'ignore', timeout: 3_000 });
      canShieldHosts = true;
    } catch {
      canShieldHosts = false;
    }
  }
  if (!canShieldHosts) return { command: binary, args: [...args], shielded: false };
  let hosts = '';
  try {
    hosts = readFileSync('/etc/hosts', 'utf8');
  } catch {
    hosts = '127.0.0.1 localhost\n::1 localhost\n';
  }
  const extra = PHONE_HOME_HOSTS.flatMap((name) => [`127.0.0.1 ${name}`, `::1 ${name}`]).join('\n');
  const hostsFile = join(dataDir, 'hosts');
  writeFileSync(hostsFile, `${hosts.trimEnd()}\n# bench/restate-peer.ts: keep restate-server's version check on this machine\n${extra}\n`);
  // unshare and sh both exec, so the pid stays the server's.
  return { command: 'unshare', args: ['--mount', '--propagation', 'private', 'sh', '-c', script, hostsFile, binary, ...args], shielded: true };
}

function startServer(binary: string, dataDir: string, ports: Ports): Child & { readonly shielded: boolean } {
  const env: NodeJS.ProcessEnv = {
    ...cleanEnv(['restate_']),
    RESTATE_DISABLE_TELEMETRY: 'true',
    RESTATE_LOG_FILTER: 'warn',
    RESTATE_LOG_DISABLE_ANSI_CODES: 'true',
    RESTATE_ADMIN__BIND_ADDRESS: `${HOST}:${ports.admin}`,
    RESTATE_INGRESS__BIND_ADDRESS: `${HOST}:${ports.ingress}`,
  };
  const args = [
    '--no-logo',
    '--listen-mode', 'tcp',
    '--bind-address', `${HOST}:${ports.node}`,
    '--advertised-address', `http://${HOST}:${ports.node}/`,
    '--base-dir', dataDir,
    '--node-name', 'lfaas-bench',
    '--cluster-name', 'lfaas-bench',
    '--auto-provision', 'true',
    '--shutdown-timeout', '2s',
  ];
  const run = shielded(binary, args, dataDir);
  return { ...startChild('restate-server', run.command, run.args, { cwd: dataDir, env, stdinPipe: false }), shielded: run.shielded };
}

/** Waits until the admin API answers `/version`; returns the server's version. */
async function waitForAdmin(agent: Agent, server: Child, port: number): Promise<string> {
  return await poll(
    `restate-server admin API on ${HOST}:${port}`,
    START_TIMEOUT_MS,
    async () => {
      const reply = await http(agent, port, 'GET', '/version', undefined, PROBE_TIMEOUT_MS);
      if (reply.status !== 200) throw new Error(`/version answered ${reply.status}`);
      const parsed: unknown = JSON.parse(reply.body);
      if (typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string') return parsed.version;
      return 'unknown';
    },
    () => (server.exitStatus() === undefined ? undefined : `restate-server ${server.exitStatus()}: ${server.tail()}`),
  );
}

function parseNumber(reply: Reply, what: string): number {
  if (reply.status !== 200) throw new Error(`${what} answered ${reply.status}: ${reply.body.slice(0, 300)}`);
  const value: unknown = JSON.parse(reply.body);
  if (typeof value !== 'number') throw new Error(`${what} answered ${reply.body.slice(0, 300)}, not a number`);
  return value;
}

/**
 * Installs (if needed) and starts Restate on loopback; resolves undefined and prints why when it
 * cannot (install failed, binary missing...).
 */
/**
 * More services for the deployment (a benchmark's own: bench/predict.ts): `source` is ES module code
 * run in the deployment after the SDK loaded (`restate` is in scope; top-level await works),
 * `services` the names of the service objects it defines, `env` more environment for its process.
 */
export interface RestateExtraServices {
  readonly source: string;
  readonly services: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

/** The deployment's source, with `extra` services in it. */
function serviceSource(extra: RestateExtraServices | undefined): string {
  if (extra === undefined) return SERVICE_SOURCE;
  // Replacer functions: a string replacement would read `$&` and the like in the source.
  return SERVICE_SOURCE.replace('// __EXTRA_SOURCE__', () => extra.source).replace('/* __EXTRA_SERVICES__ */', () => extra.services.map((name) => `, ${name}`).join(''));
}

export async function startRestate(log: (line: string) => void, extra?: RestateExtraServices): Promise<RestatePeer | undefined> {
  let binary: string;
  try {
    binary = await ensureInstalled(PEER_DIR, log);
  } catch (error) {
    log(`restate: not available: ${errorMessage(error)}`);
    return undefined;
  }
  const servicePath = join(PEER_DIR, 'service.mjs');
  try {
    writeFileSync(servicePath, serviceSource(extra));
  } catch (error) {
    log(`restate: could not write ${servicePath}: ${errorMessage(error)}`);
    return undefined;
  }

  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const result = await startOnce(binary, servicePath, log, extra?.env ?? {});
    if (result.kind === 'ok') return result.peer;
    if (!result.retry || attempt === START_ATTEMPTS) {
      log(`restate: could not start: ${result.reason}`);
      return undefined;
    }
    log(`restate: start attempt ${attempt} failed (${result.reason}); trying again on other ports`);
  }
  return undefined;
}

type StartResult = { kind: 'ok'; peer: RestatePeer } | { kind: 'failed'; reason: string; retry: boolean };

async function startOnce(binary: string, servicePath: string, log: (line: string) => void, extraEnv: Readonly<Record<string, string>>): Promise<StartResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'lfaas-restate-'));
  const adminAgent = new Agent({ keepAlive: false });
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const children: Child[] = [];
  const removeDataDir = (): void => {
    try {
      rmSync(dataDir, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  };
  process.on('exit', removeDataDir);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      agent.destroy();
      adminAgent.destroy();
      const results = await Promise.allSettled(children.map((child) => child.stop()));
      process.off('exit', removeDataDir);
      // rocksdb may still be closing files for a moment after the kill; retry the removal.
      rmSync(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    })();
    return stopping;
  };

  try {
    const [ingress, admin, node] = await freePorts(3);
    if (ingress === undefined || admin === undefined || node === undefined) throw new Error('no free ports');
    const ports: Ports = { ingress, admin, node };
    const started = performance.now();

    const server = startServer(binary, dataDir, ports);
    children.push(server);
    const serverDied = (): string | undefined => (server.exitStatus() === undefined ? undefined : `restate-server ${server.exitStatus()}: ${server.tail()}`);
    let serverVersion: string;
    try {
      serverVersion = await waitForAdmin(adminAgent, server, admin);
    } catch (error) {
      // A port taken between freePorts and the bind makes the server exit at once: try again.
      const retry = server.exitStatus() !== undefined;
      await stop().catch(() => undefined);
      return { kind: 'failed', reason: errorMessage(error), retry };
    }

    const service = startChild('restate service deployment', process.execPath, [servicePath], {
      cwd: PEER_DIR,
      env: { ...cleanEnv(['restate_', 'node_options']), RESTATE_LOGGING: 'WARN', ...extraEnv },
      stdinPipe: true,
    });
    children.push(service);
    const servicePort = await waitForReadyLine(service, SERVICE_START_TIMEOUT_MS);
    const anyDied = (): string | undefined =>
      serverDied() ?? (service.exitStatus() === undefined ? undefined : `the service deployment ${service.exitStatus()}: ${service.tail()}`);

    // The admin API answers before the cluster is provisioned; registration fails until it is.
    const deployment = JSON.stringify({ uri: `http://${HOST}:${servicePort}/` });
    await poll(
      `registering the deployment at ${HOST}:${servicePort}`,
      REGISTER_TIMEOUT_MS,
      async () => {
        const reply = await http(adminAgent, admin, 'POST', '/deployments', deployment, PROBE_TIMEOUT_MS * 5);
        if (reply.status >= 200 && reply.status < 300) return true;
        throw new Error(`POST /deployments answered ${reply.status}: ${reply.body.slice(0, 300)}`);
      },
      anyDied,
    );

    const call = async (service: string, handler: string, x: number, timeoutMs: number): Promise<number> =>
      parseNumber(await http(agent, ingress, 'POST', `/${service}/${handler}`, JSON.stringify(x), timeoutMs), `${service}/${handler}`);

    // The ingress learns the new services a moment after the registration: warm up until it has.
    await poll(`the first call through the ingress on ${HOST}:${ingress}`, WARMUP_TIMEOUT_MS, async () => ((await call('LatticeBench', 'noop', 7, PROBE_TIMEOUT_MS)) === 7 ? true : undefined), anyDied);
    const check = await call('LatticeBench', 'compose', 3, CALL_TIMEOUT_MS);
    if (check !== 16) throw new Error(`compose(3) answered ${check}, not 16`);
    const objectPath = (key: string, handler: string): string => `/LatticeCounter/${encodeURIComponent(key)}/${handler}`;
    const counterAdd = async (key: string, n: number): Promise<number> =>
      parseNumber(await httpOnce(agent, ingress, 'POST', objectPath(key, 'add'), JSON.stringify(n), CALL_TIMEOUT_MS), 'LatticeCounter/add');
    const counterGet = async (key: string): Promise<number> => parseNumber(await http(agent, ingress, 'POST', objectPath(key, 'get'), undefined, CALL_TIMEOUT_MS), 'LatticeCounter/get');

    const version = `restate-server ${serverVersion}, @restatedev/restate-sdk ${installedVersion(PEER_DIR, '@restatedev/restate-sdk') ?? SDK_VERSION}`;
    if (!server.shielded) log(`restate: note: restate-server will look up ${PHONE_HOME_HOSTS.join(', ')} at start (its release check; no unshare/root here to keep it local)`);
    log(
      `restate: ${version} up in ${((performance.now() - started) / 1000).toFixed(1)} s on ${HOST} ` +
        `(ingress ${ingress}, admin ${admin}, node ${node}; server pid ${server.pid}, deployment pid ${service.pid} on ${servicePort}; data ${dataDir})`,
    );
    return {
      kind: 'ok',
      peer: {
        version,
        pids: [server.pid, service.pid].filter((pid): pid is number => typeof pid === 'number'),
        noop: (x) => call('LatticeBench', 'noop', x, CALL_TIMEOUT_MS),
        compose: (x) => call('LatticeBench', 'compose', x, CALL_TIMEOUT_MS),
        counterAdd,
        counterGet,
        post: async (path, body, timeoutMs = CALL_TIMEOUT_MS) => {
          const reply = await http(agent, ingress, 'POST', path, body, timeoutMs);
          if (reply.status !== 200) throw new Error(`${path} answered ${reply.status}: ${reply.body.slice(0, 300)}`);
          return reply.body;
        },
        stop,
      },
    };
  } catch (error) {
    await stop().catch(() => undefined);
    return { kind: 'failed', reason: errorMessage(error), retry: false };
  }
}
