/**
 * The ML folder: onnxruntime-node (~290 MB with its CPU binaries) and onnx-proto, which the
 * prediction example, its benchmark and `ctx.infer` need and nothing else does. They are not
 * dependencies of the project (every install would carry 290 MB); {@link ensureMlInstalled}
 * installs them on first use, with `npm install --ignore-scripts` (onnxruntime-node's install
 * script downloads CUDA binaries and fails; the CPU binaries ship inside the package), into a
 * git-ignored folder: `<repository>/.lfaas/ml` by default, or `LFAAS_ML_DIR`. The project's
 * package.json and lockfile are not touched.
 *
 * @example
 * ```ts
 * const dir = await ensureMlInstalled();                 // prints what it installs, once
 * const ort = loadOnnxRuntime(dir);                      // executor/ (onnx-runtime.ts)
 * ```
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ML_PACKAGES, mlPackageInstalled, requireMlPackage } from '../executor/index.js';

/** The repository (the folder of the package.json named lattice-faas above this file). */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'lattice-faas') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

/** The ML folder: `LFAAS_ML_DIR`, else `<repository>/.lfaas/ml`. */
export function defaultMlDir(): string {
  const fromEnv = process.env['LFAAS_ML_DIR'];
  return fromEnv !== undefined && fromEnv.length > 0 ? resolve(fromEnv) : join(repositoryRoot(), '.lfaas', 'ml');
}

/** Whether both ML packages are in `dir`. */
export function mlInstalled(dir = defaultMlDir()): boolean {
  return mlPackageInstalled(dir, 'onnxruntime-node') && mlPackageInstalled(dir, 'onnx-proto');
}

export interface MlInstallOptions {
  /** The folder (default {@link defaultMlDir}). */
  readonly dir?: string;
  /** Where the progress lines go (default stderr). */
  readonly log?: (line: string) => void;
  /** The install's time limit (default 15 minutes). */
  readonly timeoutMs?: number;
}

/**
 * Installs the ML packages into the ML folder unless they are there, saying what it does, then
 * checks that onnxruntime's native binding loads. Resolves with the folder; rejects when npm
 * fails or the binding does not load.
 */
export async function ensureMlInstalled(options: MlInstallOptions = {}): Promise<string> {
  const dir = options.dir ?? defaultMlDir();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!mlInstalled(dir)) {
    mkdirSync(dir, { recursive: true });
    // A package.json of its own, so npm installs here and never walks up to the project's.
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) writeFileSync(manifest, `${JSON.stringify({ name: 'lfaas-ml', private: true, description: 'ML packages of Lattice FaaS (lfaas ml install); not part of the project' }, null, 2)}\n`);
    log(`installing onnxruntime-node (~290 MB, once) and onnx-proto into ${dir} (npm install --ignore-scripts; its CPU binaries ship in the package)...`);
    const started = performance.now();
    await runNpm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', dir, ...ML_PACKAGES], dir, options.timeoutMs ?? 15 * 60_000);
    // Checked in a child process: a broken binary must not take this one down.
    await verifyNativeBinding(dir);
    log(`installed in ${((performance.now() - started) / 1000).toFixed(1)} s; onnxruntime's native binding loads`);
  }
  return dir;
}

function runNpm(args: readonly string[], cwd: string, timeoutMs: number): Promise<void> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  return new Promise((resolvePromise, reject) => {
    // npm's own output goes to stderr: stdout is for the command's result (`--json`).
    const child = spawn(npm, args, { cwd, stdio: ['ignore', 2, 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm install took more than ${timeoutMs / 1000} s; killed`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`npm ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/** The ML folder's onnx-proto module (the `onnx` namespace of ONNX's protobuf messages). */
export function loadOnnxProto<T = unknown>(dir = defaultMlDir()): T {
  return (requireMlPackage<{ onnx: T }>(dir, 'onnx-proto')).onnx;
}

/** `lfaas ml install`: installs (or says where the packages already are) and prints the folder. */
export async function mlInstallCommand(options: { dir?: string }): Promise<void> {
  const dir = options.dir === undefined ? defaultMlDir() : resolve(options.dir);
  const already = mlInstalled(dir);
  await ensureMlInstalled({ dir });
  if (already) await verifyNativeBinding(dir);
  process.stdout.write(`${already ? 'already installed' : 'installed'}: onnxruntime-node and onnx-proto in ${dir} (its native binding loads)\n`);
}

/** Loads onnxruntime-node in a child process and runs nothing: rejects when its native binding does not load. */
export async function verifyNativeBinding(dir = defaultMlDir()): Promise<void> {
  const script = `process.env.ORT_DISABLE_TELEMETRY = '1'; const { createRequire } = require('node:module'); const r = createRequire(${JSON.stringify(join(dir, 'package.json'))}); const ort = r('onnxruntime-node'); if (typeof ort.InferenceSession?.create !== 'function') process.exit(3);`;
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4000) stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`onnxruntime-node's native binding did not load from ${dir} (${signal ?? `exit code ${code}`}): ${stderr.trim().slice(0, 1000)}`));
    });
  });
}
