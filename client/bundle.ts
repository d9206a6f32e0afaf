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
 */
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { BuildOptions } from 'esbuild';
import { ErrorCode, LfaasError } from '../lattices/index.js';

export interface BundledFunction {
  readonly code: string;
  readonly bytes: number;
}

/** Bundles at most this much code (a function ships in one KVS value). */
export const BUNDLE_BYTES_MAX = 4 * 1024 * 1024;

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);

/**
 * The SDK entry as a function imports it: a function needs only its lattices (the rest of the
 * SDK reaches sockets and files, which functions may not), so the import is bundled as the
 * lattice library. Compiled (dist/) or from sources (tests).
 */
const SDK_SPECIFIERS = new Set(['lattice-faas/client', 'lattice-faas']);
const LATTICES_ENTRY = fileURLToPath(new URL(existsSync(fileURLToPath(new URL('../lattices/index.js', import.meta.url))) ? '../lattices/index.js' : '../lattices/index.ts', import.meta.url));

export async function bundleFunction(entry: string): Promise<BundledFunction> {
  return bundle({ entryPoints: [entry] }, entry);
}

/**
 * The checks of {@link bundleFunction} on a CommonJS body given as code (`register(name, { code })`):
 * it must parse, import no Node built-in and no file (a function has neither), and fit in
 * {@link BUNDLE_BYTES_MAX}. Resolves with the code as given; rejects with EXEC_BAD_VALUE.
 */
export async function checkFunctionCode(code: string): Promise<BundledFunction> {
  const bytes = Buffer.byteLength(code);
  if (bytes === 0 || bytes > BUNDLE_BYTES_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `function code is ${bytes} bytes; 1 to ${BUNDLE_BYTES_MAX}`);
  await bundle({ stdin: { contents: code, loader: 'js', sourcefile: 'function.js' } }, 'the function code');
  return { code, bytes };
}

async function bundle(input: Pick<BuildOptions, 'entryPoints' | 'stdin'>, entry: string): Promise<BundledFunction> {
  let result;
  try {
    result = await build({
      ...input,
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
  const code = result.outputFiles[0]?.text ?? '';
  const bytes = Buffer.byteLength(code);
  if (bytes > BUNDLE_BYTES_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${entry} bundles to ${bytes} bytes; at most ${BUNDLE_BYTES_MAX}`);
  return { code, bytes };
}
