/**
 * Bundles a user's TypeScript (or JavaScript) function module into the one self-contained
 * CommonJS body an executor runs (first piece of issue 4's registration). The module's default
 * export (or `module.exports`) is the function. Node built-ins are not available to functions:
 * they see the KVS only through `ctx`, so an import of one is a typed error.
 *
 * @example
 * ```ts
 * const { code } = await bundleFunction('functions/square.ts');
 * // code: "...module.exports = ..." (what RuntimePool runs)
 * ```
 *
 * esbuild is loaded on first use, not with the SDK: `@lattice-faas/client` lists it as an optional
 * peer, so a client that registers `{ code }` (or only calls functions) installs without it.
 * Bundling a module without it is a CLIENT_MISSING_DEPENDENCY error saying what to do.
 */
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import type { BuildOptions } from 'esbuild';
import { ErrorCode, LfaasError } from '../lattices/index.js';

export interface BundledFunction {
  readonly code: string;
  readonly bytes: number;
  /**
   * A bundled module's source map (JSON, sources named relative to the working directory, no
   * sources' contents): executors map the function's stack traces back to its files with it.
   * Absent for code given as is, and for a map past {@link SOURCE_MAP_BYTES_MAX}.
   */
  readonly sourceMap?: string;
}

/** A source map travels with the function up to this size (the registry refuses more). */
export const SOURCE_MAP_BYTES_MAX = 1024 * 1024;

/** Bundles at most this much code (a function ships in one KVS value). */
export const BUNDLE_BYTES_MAX = 4 * 1024 * 1024;

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);

/**
 * The SDK entry as a function imports it: a function needs only its lattices (the rest of the
 * SDK reaches sockets and files, which functions may not), so the import is bundled as the
 * lattice library. Compiled (dist/) or from sources (tests).
 */
const SDK_SPECIFIERS = new Set(['lattice-faas/client', 'lattice-faas', '@lattice-faas/client']);
const LATTICES_ENTRY = fileURLToPath(new URL(existsSync(fileURLToPath(new URL('../lattices/index.js', import.meta.url))) ? '../lattices/index.js' : '../lattices/index.ts', import.meta.url));

type Esbuild = typeof import('esbuild');
let esbuildLoad: Promise<Esbuild | undefined> | undefined;

/** esbuild, imported once on first use; undefined when it is not installed. */
function loadEsbuild(): Promise<Esbuild | undefined> {
  esbuildLoad ??= import('esbuild').then(
    (module) => module,
    (error: unknown) => {
      if ((error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND') return undefined;
      throw error;
    },
  );
  return esbuildLoad;
}

export async function bundleFunction(entry: string): Promise<BundledFunction> {
  const esbuild = await loadEsbuild();
  if (esbuild === undefined) {
    throw new LfaasError(
      ErrorCode.CLIENT_MISSING_DEPENDENCY,
      `cannot bundle ${entry}: bundling a function module needs esbuild, which is not installed. Install it (npm install esbuild), or register the function as CommonJS code: register(name, { code: 'module.exports = (x) => x * x;' })`,
    );
  }
  return bundle(esbuild, { entryPoints: [entry] }, entry, true);
}

/**
 * The checks of {@link bundleFunction} on a CommonJS body given as code (`register(name, { code })`):
 * it must parse, import no Node built-in and no file (a function has neither), and fit in
 * {@link BUNDLE_BYTES_MAX}. Resolves with the code as given; rejects with EXEC_BAD_VALUE.
 */
export async function checkFunctionCode(code: string): Promise<BundledFunction> {
  const bytes = Buffer.byteLength(code);
  if (bytes === 0 || bytes > BUNDLE_BYTES_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `function code is ${bytes} bytes; 1 to ${BUNDLE_BYTES_MAX}`);
  const esbuild = await loadEsbuild();
  if (esbuild !== undefined) await bundle(esbuild, { stdin: { contents: code, loader: 'js', sourcefile: 'function.js' } }, 'the function code');
  else checkWithoutBundler(code);
  return { code, bytes };
}

/**
 * The checks of {@link checkFunctionCode} when esbuild is not installed: the body must compile as
 * a CommonJS module (compiled by V8, never run) and name no module in a literal `require(...)`
 * (a function has no files and no Node built-ins; the sandbox has no `require` either, so what
 * slips past here still fails there, as a typed error of the call).
 */
function checkWithoutBundler(code: string): void {
  try {
    new Script(`(function (exports, require, module, __filename, __dirname) {\n${code}\n})`, { filename: 'function.js' });
  } catch (error) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `cannot compile the function code: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const required = /\brequire\s*\(\s*(['"`])([^'"`]+)\1\s*\)/.exec(code);
  if (required !== null) {
    const name = required[2]!;
    const what = BUILTINS.has(name) ? `the Node built-in ${JSON.stringify(name)}` : JSON.stringify(name);
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `functions cannot import ${what}: the function code must be one self-contained CommonJS body`);
  }
}

async function bundle(esbuild: Esbuild, input: Pick<BuildOptions, 'entryPoints' | 'stdin'>, entry: string, withSourceMap = false): Promise<BundledFunction> {
  let result;
  try {
    result = await esbuild.build({
      ...input,
      // Not written (write: false): `outfile` only names the map's sources relative to the working directory.
      ...(withSourceMap ? { sourcemap: 'external' as const, sourcesContent: false, outfile: 'function.js' } : {}),
      bundle: true,
      write: false,
      format: 'cjs',
      platform: 'neutral',
      target: 'node20',
      mainFields: ['module', 'main'],
      logLevel: 'silent',
      plugins: [
        {
          name: 'no-node-builtins',
          setup(plugin) {
            plugin.onResolve({ filter: /.*/ }, (args) => {
              if (BUILTINS.has(args.path)) return { errors: [{ text: `functions cannot import the Node built-in ${JSON.stringify(args.path)}` }] };
              if (SDK_SPECIFIERS.has(args.path)) return { path: LATTICES_ENTRY };
              return undefined;
            });
          },
        },
      ],
    });
  } catch (error) {
    const messages = (error as { errors?: { text: string }[] }).errors?.map((e) => e.text).join('; ') ?? String(error);
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `cannot bundle ${entry}: ${messages}`, { cause: error });
  }
  const code = result.outputFiles.find((file) => !file.path.endsWith('.map'))?.text ?? '';
  const bytes = Buffer.byteLength(code);
  if (bytes > BUNDLE_BYTES_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${entry} bundles to ${bytes} bytes; at most ${BUNDLE_BYTES_MAX}`);
  const sourceMap = result.outputFiles.find((file) => file.path.endsWith('.map'))?.text;
  return sourceMap === undefined || Buffer.byteLength(sourceMap) > SOURCE_MAP_BYTES_MAX ? { code, bytes } : { code, bytes, sourceMap };
}
