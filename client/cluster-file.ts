/**
 * Where a client finds its cluster. `lfaas up` writes `<project folder>/.lfaas/cluster.json` once
 * every role answers (the routing and scheduler addresses with their CURVE keys, the HTTP
 * ingress, the keys folder, the admin token, its pid and start time) and removes it when it stops.
 * A client given no address resolves, first match wins:
 *
 *   1. what the caller passed (the command's flags, `connect()`'s options);
 *   2. the environment: `LFAAS_ROUTING`, `LFAAS_SCHEDULERS`, `LFAAS_TOKEN`;
 *   3. the state file: `LFAAS_STATE=<file>`, else `.lfaas/cluster.json` in the working directory
 *      or the nearest folder above it that has one.
 *
 * A file whose `up` process is gone is stale: the error says so instead of sending requests to
 * addresses nobody holds. Only node: built-ins here (the client package stays light).
 *
 * @example
 * ```ts
 * const cluster = resolveCluster({});            // flags > environment > state file
 * const faas = await LatticeFaas.connect({});    // does the same
 * ```
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ErrorCode, LfaasError } from '../lattices/index.js';

/** The state file's place inside a project folder. */
export const CLUSTER_FILE = join('.lfaas', 'cluster.json');
/** Folders walked up from the working directory at most, looking for the state file. */
const WALK_UP_MAX = 64;
/** The state file is small; a larger one is not ours. */
const CLUSTER_FILE_BYTES_MAX = 64 * 1024;

/** What `lfaas up` writes. */
export interface ClusterFile {
  readonly version: 1;
  /** Routing node addresses (`tcp://host:port#<CURVE public key>`). */
  readonly routing: readonly string[];
  /** Scheduler addresses, likewise. */
  readonly schedulers: readonly string[];
  /** The HTTP ingress (`http://127.0.0.1:7080`), when it runs. */
  readonly ingress?: string;
  /** The dashboard (`http://127.0.0.1:7081`; open it with `/#token=<admin token>`), when it runs. */
  readonly dashboard?: string;
  /**
   * Every role's metrics server by role name (`routing`, `node-0`, `scheduler-0`, `executor-0`,
   * `ingress`): `http://127.0.0.1:<port>`, serving /metrics, /healthz and /readyz.
   */
  readonly metrics?: Readonly<Record<string, string>>;
  /** The keys folder (members, token keys). */
  readonly keys: string;
  /** The admin token's file. */
  readonly tokenFile: string;
  /** The admin token itself (the file is written with mode 0600). */
  readonly token: string;
  /** The data folder. */
  readonly data: string;
  /** `up`'s process id: gone means the file is stale. */
  readonly pid: number;
  /** ISO time `up` reported ready. */
  readonly startedAt: string;
}

/** Where a client's cluster came from. */
export interface ResolvedCluster {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  /** The token to present: given, `LFAAS_TOKEN`, or the state file's admin token. */
  readonly token?: string;
  readonly ingress?: string;
  /** `options`, `environment`, or the state file's path: said in errors. */
  readonly source: string;
  /** The state file read, when one was. */
  readonly file?: ClusterFile;
}

/** Addresses given as a list or a comma-separated string. */
function addressList(value: readonly string[] | string | undefined): string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? value.split(',') : value;
  return items.map((item) => item.trim()).filter((item) => item.length > 0);
}

/**
 * The state file to read: `LFAAS_STATE`, else `.lfaas/cluster.json` in `from` or the nearest
 * folder above that has one; undefined when none does.
 */
export function findClusterFile(from: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): string | undefined {
  const named = env['LFAAS_STATE'];
  if (named !== undefined && named !== '') return resolve(named);
  let folder = resolve(from);
  for (let step = 0; step < WALK_UP_MAX; step++) {
    const candidate = join(folder, CLUSTER_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(folder);
    if (parent === folder) return undefined;
    folder = parent;
  }
  return undefined;
}

/** Reads and checks a state file; a typed error when it is missing or not one. */
export function readClusterFile(path: string): ClusterFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new LfaasError(ErrorCode.TRANSPORT_NO_CLUSTER, `no cluster file at ${path}: is \`lfaas up\` running?`, { cause: error });
  }
  if (text.length > CLUSTER_FILE_BYTES_MAX) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `${path} is not a cluster file (${text.length} characters)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch (error) {
    throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `${path} is not a cluster file (not JSON)`, { cause: error });
  }
  const doc = parsed as Partial<Record<keyof ClusterFile, unknown>>;
  const strings = (value: unknown): value is string[] => Array.isArray(value) && value.length > 0 && value.length <= 256 && value.every((item) => typeof item === 'string' && item.length > 0 && item.length <= 512);
  const ok =
    typeof parsed === 'object' && parsed !== null && doc.version === 1 && strings(doc.routing) && strings(doc.schedulers) &&
    typeof doc.keys === 'string' && typeof doc.tokenFile === 'string' && typeof doc.token === 'string' && typeof doc.data === 'string' &&
    Number.isSafeInteger(doc.pid) && (doc.pid as number) > 0 && typeof doc.startedAt === 'string' && (doc.ingress === undefined || typeof doc.ingress === 'string') && (doc.dashboard === undefined || typeof doc.dashboard === 'string');
  if (!ok) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `${path} is not a cluster file (a field is missing or of the wrong type)`);
  return doc as ClusterFile;
}

/** Whether the process `pid` exists (signal 0: EPERM means it exists under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes the state file atomically (a temporary file renamed over it), mode 0600: it holds the
 * admin token.
 */
export function writeClusterFile(path: string, content: ClusterFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/** Removes the state file if it is still the one `pid` wrote (a later `up` may own it now). */
export function removeClusterFile(path: string, pid: number): void {
  try {
    if (readClusterFile(path).pid !== pid) return;
  } catch {
    return;
  }
  rmSync(path, { force: true });
}

/**
 * The cluster a client talks to: `given` (flags, options) > the environment > the state file.
 * Throws TRANSPORT_NO_CLUSTER when nothing names one, or when the state file is stale.
 */
export function resolveCluster(
  given: { readonly routing?: readonly string[] | string; readonly schedulers?: readonly string[] | string; readonly token?: string },
  options: { readonly needSchedulers?: boolean; readonly env?: NodeJS.ProcessEnv; readonly cwd?: string } = {},
): ResolvedCluster {
  const env = options.env ?? process.env;
  const needSchedulers = options.needSchedulers ?? true;
  let routing = addressList(given.routing);
  let schedulers = addressList(given.schedulers);
  let token = given.token;
  let source = 'options';
  if (routing.length === 0) {
    routing = addressList(env['LFAAS_ROUTING']);
    if (routing.length > 0) source = 'environment';
  }
  if (needSchedulers && schedulers.length === 0) schedulers = addressList(env['LFAAS_SCHEDULERS']);
  token ??= env['LFAAS_TOKEN'] === undefined || env['LFAAS_TOKEN'] === '' ? undefined : env['LFAAS_TOKEN'];
  if (routing.length > 0 && (!needSchedulers || schedulers.length > 0)) return { routing, schedulers, ...(token === undefined ? {} : { token }), source };
  const path = findClusterFile(options.cwd ?? process.cwd(), env);
  if (path === undefined) {
    throw new LfaasError(
      ErrorCode.TRANSPORT_NO_CLUSTER,
      `no cluster given: no --routing${needSchedulers ? '/--schedulers' : ''}, no LFAAS_ROUTING${needSchedulers ? '/LFAAS_SCHEDULERS' : ''}, and no ${CLUSTER_FILE} here or above: is \`lfaas up\` running?`,
    );
  }
  const file = readClusterFile(path);
  if (!processAlive(file.pid)) {
    throw new LfaasError(ErrorCode.TRANSPORT_NO_CLUSTER, `no cluster at ${file.routing.join(',')}: the cluster file ${path} is stale (lfaas up, pid ${file.pid}, is not running): is \`lfaas up\` running?`);
  }
  if (routing.length === 0) routing = [...file.routing];
  if (schedulers.length === 0) schedulers = [...file.schedulers];
  return { routing, schedulers, token: token ?? file.token, ...(file.ingress === undefined ? {} : { ingress: file.ingress }), source: path, file };
}
