/**
 * Redis as a peer to measure against: finds the installed `redis-server` and `redis-benchmark`,
 * starts a private, persistence-free server on a free loopback port, gives a pipelining ioredis
 * client, and runs `redis-benchmark` for Redis's own numbers on the same machine. Every wait is
 * bounded; a server that was started is killed when this process exits, and does not keep it
 * running.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePorts } from '../cli/index.js';
import { hasExited, killQuietly, waitForExit } from './harness/child-process.js';

/** What to tell the user when Redis is missing. */
export const REDIS_INSTALL_HINT = 'Redis is not installed: apt-get install -y redis-server redis-tools (the bench runs the rest without it)';

const EXTRA_DIRS = ['/usr/bin', '/usr/local/bin'];
const START_TIMEOUT_MS = 10_000;
const PING_TIMEOUT_MS = 500;
const PING_INTERVAL_MS = 50;
const STOP_GRACE_MS = 2_000;
const BENCHMARK_TIMEOUT_MS = 60_000;
const CLOSE_TIMEOUT_MS = 2_000;
const START_ATTEMPTS = 3;
const OUTPUT_TAIL_CHARS = 4_000;

/** A running private `redis-server`. */
export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after 2 s; resolves once the process has exited. */
  stop(): Promise<void>;
}

/** The few commands the benchmarks use, over one auto-pipelining ioredis connection. */
export interface RedisClient {
  get(key: string): Promise<unknown>;
  set(key: string, value: Buffer): Promise<unknown>;
  close(): Promise<void>;
}

/** Options of one `redis-benchmark -t get,set` run. */
export interface RedisBenchmarkOptions {
  readonly requests: number;
  readonly clients: number;
  readonly valueBytes: number;
  /** Commands per pipeline (`-P`); 1 when absent. */
  readonly pipeline?: number;
}

/** Throughput and, when the installed version reports it, median latency of GET and SET. */
export interface RedisBenchmarkResult {
  readonly getPerSecond: number;
  readonly setPerSecond: number;
  readonly getP50Ms?: number;
  readonly setP50Ms?: number;
}

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function which(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((dir) => dir !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Finds `redis-server` (required) and `redis-benchmark` (optional) on PATH, then in /usr/bin and
 * /usr/local/bin. Undefined when there is no `redis-server`.
 */
export function findRedis(): { serverPath: string; benchmarkPath: string | undefined } | undefined {
  const serverPath = which('redis-server');
  if (serverPath === undefined) return undefined;
  return { serverPath, benchmarkPath: which('redis-benchmark') };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One PING over a raw TCP connection; true on `+PONG`, false on anything else within `timeoutMs`. */
function pingOnce(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}

/** Stops `child`: SIGTERM, SIGKILL after the grace period, and a bounded wait for the exit. */
async function stopChild(child: ChildProcess, pid: number): Promise<void> {
  if (hasExited(child)) return;
  killQuietly(pid, 'SIGTERM');
  if (await waitForExit(child, STOP_GRACE_MS)) return;
  killQuietly(pid, 'SIGKILL');
  if (!(await waitForExit(child, STOP_GRACE_MS))) throw new Error(`redis-server ${pid} did not exit after SIGKILL within ${STOP_GRACE_MS} ms`);
}

async function startOnce(serverPath: string, persistence: RedisPersistence): Promise<RedisServer | { exitedEarly: string }> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port');
  const durability =
    persistence.kind === 'none' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', persistence.dir, '--appendfilename', 'bench.aof'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...durability, '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'warning'];
  const child = spawn(serverPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Keep draining both pipes (a full pipe would block the server) and keep the tail for errors.
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // A forgotten server must not keep this process alive; the 'exit' handler below kills it.
  child.unref();
  (child.stdout as Socket).unref();
  (child.stderr as Socket).unref();
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let failure: Error | undefined;
  void spawnError.then((error) => (failure = error));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${serverPath}: ${(await spawnError).message}`);

  const killOnExit = (): void => killQuietly(pid, 'SIGKILL');
  process.on('exit', killOnExit);

  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    if (failure !== undefined) {
      process.off('exit', killOnExit);
      throw new Error(`redis-server failed: ${failure.message}`);
    }
    if (hasExited(child)) {
      process.off('exit', killOnExit);
      return { exitedEarly: `redis-server on port ${port} exited with ${child.exitCode ?? child.signalCode}: ${output.trim()}` };
    }
    if (await pingOnce(port, Math.min(PING_TIMEOUT_MS, Math.max(1, deadline - performance.now())))) break;
    if (performance.now() >= deadline) {
      await stopChild(child, pid).catch(() => undefined);
      process.off('exit', killOnExit);
      throw new Error(`redis-server on port ${port} did not answer PING within ${START_TIMEOUT_MS} ms: ${output.trim()}`);
    }
    await sleep(PING_INTERVAL_MS);
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    pid,
    stop: () => {
      stopping ??= stopChild(child, pid).finally(() => process.off('exit', killOnExit));
      return stopping;
    },
  };
}

/**
 * Starts a private `redis-server` on a free loopback port (persistence off by default), and resolves
 * once it answers PING (within 10 s, else it is killed and this throws). The server is also
 * killed when this Node process exits. Retries on a new port if the server exits at once (the
 * free port was taken in between).
 */
/** Persistence off, or an append-only file fsynced before every write is acknowledged. */
export type RedisPersistence = { readonly kind: 'none' } | { readonly kind: 'fsync-always'; readonly dir: string };

export async function startRedis(persistence: RedisPersistence = { kind: 'none' }): Promise<RedisServer> {
  const found = findRedis();
  if (found === undefined) throw new Error(REDIS_INSTALL_HINT);
  let lastFailure = '';
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const result = await startOnce(found.serverPath, persistence);
    if (!('exitedEarly' in result)) return result;
    lastFailure = result.exitedEarly;
  }
  throw new Error(`redis-server did not start in ${START_ATTEMPTS} attempts; last: ${lastFailure}`);
}

/**
 * An ioredis connection to 127.0.0.1:`port` with auto-pipelining (concurrent commands share
 * writes), connected before it is returned.
 */
export async function connectRedis(port: number): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: 1, connectTimeout: START_TIMEOUT_MS });
  // Without a listener ioredis prints every connection error; the last one goes into the throw.
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => (lastError = error));
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`could not connect to Redis on 127.0.0.1:${port}: ${(lastError ?? (error as Error)).message}`);
  }
  return redis;
}

/** Quits (bounded), then disconnects. */
export async function closeRedis(redis: Redis): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
  await Promise.race([redis.quit().catch(() => undefined), timeout]);
  clearTimeout(timer);
  redis.disconnect();
}

/** The KVS bench's client: GET replies are Buffers, as SET values are. */
export async function redisClient(port: number): Promise<RedisClient> {
  const redis = await connectRedis(port);
  return { get: (key) => redis.getBuffer(key), set: (key, value) => redis.set(key, value), close: () => closeRedis(redis) };
}

/** Splits one CSV line of quoted fields (redis-benchmark never puts quotes or commas inside). */
function csvFields(line: string): string[] {
  return line.split(',').map((field) => field.trim().replace(/^"(.*)"$/, '$1'));
}

/**
 * Parses `redis-benchmark --csv` output. Redis 6.2+ prints a header
 * (`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...`); older versions print
 * only `"TEST","rps"` rows, which is then what is read.
 */
export function parseRedisBenchmarkCsv(text: string): Map<string, { perSecond: number; p50Ms?: number }> {
  const rows = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.startsWith('"'))
    .map(csvFields);
  let testColumn = 0;
  let rpsColumn = 1;
  let p50Column = -1;
  const header = rows[0];
  if (header !== undefined && header[0]?.toLowerCase() === 'test') {
    rows.shift();
    testColumn = header.indexOf('test');
    rpsColumn = header.indexOf('rps');
    p50Column = header.indexOf('p50_latency_ms');
  }
  const results = new Map<string, { perSecond: number; p50Ms?: number }>();
  for (const row of rows) {
    const test = row[testColumn]?.toUpperCase();
    const perSecond = Number(row[rpsColumn]);
    if (test === undefined || !Number.isFinite(perSecond)) continue;
    const p50Ms = p50Column >= 0 ? Number(row[p50Column]) : Number.NaN;
    results.set(test, Number.isFinite(p50Ms) ? { perSecond, p50Ms } : { perSecond });
  }
  return results;
}

/**
 * Runs `redis-benchmark -t get,set` against 127.0.0.1:`port` (killed after 60 s) and returns
 * its requests per second and, when reported, p50 latency of GET and SET. Throws at once if no
 * Redis answers PING there.
 */
export async function runRedisBenchmark(benchmarkPath: string, port: number, options: RedisBenchmarkOptions): Promise<RedisBenchmarkResult> {
  // redis-benchmark spins at full CPU until its timeout when nothing listens; check first.
  if (!(await pingOnce(port, PING_TIMEOUT_MS * 4))) throw new Error(`no Redis answers PING on 127.0.0.1:${port}`);
  const args = [
    '-h', '127.0.0.1',
    '-p', String(port),
    '-t', 'get,set',
    '-n', String(options.requests),
    '-c', String(options.clients),
    '-d', String(options.valueBytes),
    '-P', String(options.pipeline ?? 1),
    '--csv', '-q',
  ];
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(benchmarkPath, args, { timeout: BENCHMARK_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (error, out, err) => {
      if (error !== null) reject(new Error(`redis-benchmark failed (${error.killed ? `killed after ${BENCHMARK_TIMEOUT_MS} ms` : error.message}): ${err.trim()}`));
      else resolve({ stdout: out, stderr: err });
    });
  });
  const parsed = parseRedisBenchmarkCsv(stdout);
  const get = parsed.get('GET');
  const set = parsed.get('SET');
  if (get === undefined || set === undefined) throw new Error(`redis-benchmark printed no GET/SET rows: ${stdout.trim()} ${stderr.trim()}`);
  return {
    getPerSecond: get.perSecond,
    setPerSecond: set.perSecond,
    ...(get.p50Ms === undefined ? {} : { getP50Ms: get.p50Ms }),
    ...(set.p50Ms === undefined ? {} : { setP50Ms: set.p50Ms }),
  };
}
