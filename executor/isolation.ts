/**
 * Isolation levels of an executor's runtimes, weakest first, and how a sandbox process is started
 * at each:
 *
 * - `none`: threads of the executor running functions in `node:vm` contexts. No wall between a
 *   function and the executor: for one trusted owner's development only, chosen by name, warned.
 * - `process`: a process per runtime (a pool per owner), the function in a Hardened JavaScript
 *   compartment, Node's permission model (reads of the runtime bundle only; no writes, child
 *   processes, workers or addons), `--zero-fill-buffers`, the heap capped at the function's
 *   memory, and (when the executor runs as root) the unprivileged user `nobody`.
 * - `bwrap`: `process` inside a bubblewrap sandbox: new user, network, PID, IPC, UTS and cgroup
 *   namespaces (no network at all), a read-only root holding only /usr and the runtime bundle,
 *   uid/gid 65534 on the host, ended with the executor.
 *
 * The executor detects the strongest level the machine allows ({@link detectIsolation}: bwrap is
 * on the PATH and a probe runs in it) and runs at it unless `--isolation` names another.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ISOLATION_LEVELS = ['none', 'process', 'bwrap'] as const;
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];

export function isIsolationLevel(value: string): value is IsolationLevel {
  return (ISOLATION_LEVELS as readonly string[]).includes(value);
}

/** How strong a level is (0: none); for the metric and comparisons. */
export function isolationRank(level: IsolationLevel): number {
  return ISOLATION_LEVELS.indexOf(level);
}

/** The unprivileged user and group sandbox processes run as (Debian's `nobody`/`nogroup`). */
export const SANDBOX_UID = 65534;

/** A bundle of scripts/bundle-sandbox.js: from the compiled tree or the sources (tests). */
function bundlePath(file: string): string | undefined {
  return [new URL(`../sandbox-runtime/${file}`, import.meta.url), new URL(`../dist/sandbox-runtime/${file}`, import.meta.url)].map((url) => fileURLToPath(url)).find((path) => existsSync(path));
}

/** The sandbox runtime bundle. */
export const RUNTIME_BUNDLE = bundlePath('runtime.mjs');

/**
 * Copies of the bundles that the sandbox user can read (the project may live under a directory
 * only its owner may enter), in a fresh directory of their own; made once per process.
 */
const staged = new Map<string, string>();
function stage(file: string): string {
  const done = staged.get(file);
  if (done !== undefined && existsSync(done)) return done;
  const source = bundlePath(file);
  if (source === undefined) throw new Error(`the sandbox bundle ${file} is missing: run \`npm run build\``);
  const dir = mkdtempSync(join(tmpdir(), 'lfaas-sandbox-'));
  chmodSync(dir, 0o755);
  const path = join(dir, file);
  copyFileSync(source, path);
  chmodSync(path, 0o444);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  staged.set(file, path);
  return path;
}

/** The staged runtime bundle (what sandbox processes run). */
export function stagedBundle(): string {
  return stage('runtime.mjs');
}

/** Whether this process may switch its children to another user. */
function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Whether sandbox processes switch to {@link SANDBOX_UID}: when this process is root, unless the
 * probe of {@link detectIsolation} found that the sandbox user cannot run Node here (a `node`
 * under a directory only root may enter); then they keep this process's user, and the reason is
 * in the detected level's.
 */
let dropPrivileges = true;

export interface SandboxCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly uid?: number;
  readonly gid?: number;
}

/**
 * The flag that turns on Node's permission model: `--permission` since Node 22.13 (23.5), where
 * the old `--experimental-permission` is refused as a bad option (Node 24); that old name before.
 * Sandbox processes run this process's Node, so its own flags decide.
 */
export const PERMISSION_FLAG = process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission';

/** Node's flags for a sandbox process reading the bundle at `bundle`. */
function nodeFlags(bundle: string, memoryMb: number): string[] {
  return [
    PERMISSION_FLAG,
    `--allow-fs-read=${bundle}`,
    '--no-warnings',
    '--zero-fill-buffers',
    `--max-old-space-size=${memoryMb}`,
    `--max-semi-space-size=${Math.max(1, Math.min(16, Math.floor(memoryMb / 16)))}`,
    bundle,
  ];
}

/** How to start one sandbox process at `level` (`process` or `bwrap`). */
export function sandboxCommand(level: Exclude<IsolationLevel, 'none'>, memoryMb: number): SandboxCommand {
  const bundle = stagedBundle();
  const user = isRoot() && dropPrivileges ? { uid: SANDBOX_UID, gid: SANDBOX_UID } : {};
  if (level === 'process') return { command: process.execPath, args: nodeFlags(bundle, memoryMb), ...user };
  return { command: 'bwrap', args: [...bwrapArgs(dirname(bundle), []), realpathSync(process.execPath), ...nodeFlags('/runtime/runtime.mjs', memoryMb)], ...user };
}

/**
 * How to start an executor's inference process (executor/inference.ts) at `level`: the models are
 * owners' data, parsed by onnxruntime's native code, so it gets the runtimes' wall less what
 * onnxruntime needs: Node's permission model with reads of its bundle and the ML folder and
 * native addons allowed (onnxruntime is one), the unprivileged user, and at `bwrap` the
 * namespaces with no network and a read-only root of /usr, the bundle (/runtime) and the ML
 * folder (/ml). Its IPC channel is fd 3 (`NODE_CHANNEL_FD`), kept through bubblewrap. The folder
 * it is given as its argument is the ML folder as it sees it.
 */
export function inferenceCommand(level: Exclude<IsolationLevel, 'none'>, mlDir: string, heapMb: number): SandboxCommand & { readonly mlDir: string } {
  const bundle = stage('inference.mjs');
  const user = isRoot() && dropPrivileges ? { uid: SANDBOX_UID, gid: SANDBOX_UID } : {};
  const flags = (script: string, ml: string): string[] => [PERMISSION_FLAG, `--allow-fs-read=${script}`, `--allow-fs-read=${ml}`, '--allow-addons', '--no-warnings', `--max-old-space-size=${heapMb}`, script, ml];
  if (level === 'process') return { command: process.execPath, args: flags(bundle, mlDir), mlDir, ...user };
  // After --clearenv: the IPC channel's fd and serialisation, as Node set them for bwrap.
  const channel = ['--setenv', 'NODE_CHANNEL_FD', '3', '--setenv', 'NODE_CHANNEL_SERIALIZATION_MODE', 'advanced'];
  return { command: 'bwrap', args: [...bwrapArgs(dirname(bundle), ['--ro-bind', mlDir, '/ml']), ...channel, realpathSync(process.execPath), ...flags('/runtime/inference.mjs', '/ml')], mlDir: '/ml', ...user };
}

/** bubblewrap's arguments up to the command: namespaces, the read-only root, `runtimeDir` at /runtime, then `extra`. */
function bwrapArgs(runtimeDir: string, extra: readonly string[]): string[] {
  const node = realpathSync(process.execPath);
  const binds = node.startsWith('/usr/') ? [] : ['--ro-bind', dirname(node), dirname(node)];
  return [
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--uid', String(SANDBOX_UID),
    '--gid', String(SANDBOX_UID),
    '--die-with-parent',
    '--new-session',
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--symlink', 'usr/bin', '/bin',
    ...binds,
    '--ro-bind', runtimeDir, '/runtime',
    ...extra,
    '--proc', '/proc',
    '--dev', '/dev',
    '--chdir', '/runtime',
    '--remount-ro', '/',
    '--clearenv',
  ];
}

export interface DetectedIsolation {
  readonly level: IsolationLevel;
  /** Why the level is what it is (what was probed, what failed). */
  readonly reason: string;
}

/** Runs `node -e 0` in a bubblewrap sandbox: whether the machine allows the `bwrap` level. */
async function bwrapWorks(): Promise<string | undefined> {
  let command: SandboxCommand;
  try {
    command = sandboxCommand('bwrap', 64);
  } catch (error) {
    return (error as Error).message;
  }
  return probe(command.command, [...command.args.slice(0, command.args.indexOf(realpathSync(process.execPath)) + 1), '-e', 'process.exit(0)'], command);
}

/** Runs `command` as the sandbox would; undefined if it exits 0, else why not. */
function probe(command: string, args: readonly string[], user: Pick<SandboxCommand, 'uid' | 'gid'>): Promise<string | undefined> {
  return new Promise((resolve) => {
    let stderr = '';
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(user.uid === undefined ? {} : { uid: user.uid, gid: user.gid }) });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString('utf8');
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve(`${command} could not start: ${error.message}`);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? undefined : `${command} probe ended with ${signal ?? code}: ${stderr.trim().slice(0, 300)}`);
    });
  });
}

let detected: Promise<DetectedIsolation> | undefined;

/** The strongest level this machine allows (probed once per process). */
export function detectIsolation(): Promise<DetectedIsolation> {
  detected ??= (async () => {
    if (RUNTIME_BUNDLE === undefined) return { level: 'none' as const, reason: 'the sandbox runtime bundle is missing (run `npm run build`)' };
    let userNote = '';
    if (isRoot()) {
      const userProblem = await probe(process.execPath, ['-e', 'process.exit(0)'], { uid: SANDBOX_UID, gid: SANDBOX_UID });
      if (userProblem !== undefined) {
        dropPrivileges = false;
        userNote = `; the sandbox user ${SANDBOX_UID} cannot run node here (${userProblem}), so sandbox processes keep this process's user`;
      }
    }
    const bwrapProblem = await bwrapWorks();
    if (bwrapProblem === undefined) return { level: 'bwrap' as const, reason: `bubblewrap namespaces are available${userNote}` };
    return { level: 'process' as const, reason: `no bubblewrap sandbox (${bwrapProblem}); sandbox processes run with the permission model only${userNote}` };
  })();
  return detected;
}
