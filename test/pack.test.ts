/**
 * The two packages as users get them (docs/packages.md): `lattice-faas` (the roles, the CLI, the
 * test harness) and `@lattice-faas/client` (the SDK alone), packed from the build `npm test` made
 * (`npm pack --ignore-scripts`: their `prepack` rebuilds dist/, which other test files are reading
 * meanwhile), their file lists and metadata checked, installed from the tarballs into scratch
 * projects the way a user installs them (npm, the registry's packages from npm's cache,
 * `strict-allow-scripts` with the project's `allowScripts`), then used:
 * - a consumer written against the packages' declarations is type-checked with strict settings,
 *   and a file with a type error must fail the check;
 * - the compiled consumer runs against a secure cluster of real processes: a function from code,
 *   one from a module (bundled with esbuild), a `ref` argument, KVS reads and writes;
 * - the client installed alone brings no server package, and without esbuild still registers
 *   `{ code }` and calls it, while bundling a module is a typed CLIENT_MISSING_DEPENDENCY;
 * - the in-process harness (`lattice-faas/testing`), type-checked and run from the installed package.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaasCluster, adminToken } from './cluster.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSC = join(root, 'node_modules', '.bin', 'tsc');
const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;
/** What the client package may depend on: the wire (ZeroMQ, msgpack, protobuf), the OpenTelemetry API (no-op spans; docs/observability-tracing.md) and nothing of the server. */
const LIGHT_DEPENDENCIES = ['@opentelemetry/api', 'msgpackr', 'protobufjs', 'zeromq'];
const SERVER_PACKAGES = ['lmdb', 'esbuild', 'pino', 'prom-client', 'ses', 'commander', 'lru-cache', 'hono', '@hono/node-server', 'fflate'];
const NPM_INSTALL = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'error'];
/** Bounds each child process (npm, tsc, a consumer): a hang fails the test instead of stalling it. */
const CHILD_TIMEOUT_MS = 150_000;

interface PackageJson {
  readonly name: string;
  readonly version: string;
  readonly engines?: Record<string, string>;
  readonly dependencies?: Record<string, string>;
  readonly devDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly exports?: Record<string, string | Record<string, string>>;
  readonly scripts?: Record<string, string>;
  readonly files?: string[];
  readonly publishConfig?: Record<string, unknown>;
}

interface Packed {
  readonly tarball: string;
  readonly files: string[];
}

interface Ran {
  readonly code: number;
  /** stdout then stderr. */
  readonly output: string;
  readonly stdout: string;
}

const BUILTINS = new Set(builtinModules);

/** The package a bare specifier names (`@scope/name/sub` -> `@scope/name`); undefined for a Node built-in. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return BUILTINS.has(name) ? undefined : name;
}

/**
 * What `files` (paths relative to the repository) import, static and dynamic: the packages, each
 * with a file importing it, and every module file reached (paths relative to the repository).
 * esbuild parses them (comments and strings are not imports) and keeps every package external.
 */
async function importsOf(files: readonly string[]): Promise<{ packages: Map<string, string>; modules: string[] }> {
  // One entry importing every file: one bundle to build, whose metafile lists each file's imports.
  const contents = files.map((file) => `import ${JSON.stringify(`./${file}`)};`).join('\n');
  const result = await build({ stdin: { contents, resolveDir: root }, absWorkingDir: root, bundle: true, packages: 'external', platform: 'node', format: 'esm', metafile: true, write: false, logLevel: 'silent' });
  const packages = new Map<string, string>();
  for (const [input, { imports }] of Object.entries(result.metafile.inputs)) {
    for (const { path, external } of imports) {
      const name = external ? packageOf(path) : undefined;
      if (name !== undefined && !packages.has(name)) packages.set(name, input);
    }
  }
  return { packages, modules: Object.keys(result.metafile.inputs).filter((input) => input !== '<stdin>') };
}

/**
 * This process's environment less what npm gives the scripts it runs (`npm test`): npm_config_*
 * (the repository's prefix and .npmrc settings), npm_package_*, INIT_CWD. A scratch project's npm
 * sees only its own folder and .npmrc, as under a user's shell.
 */
function userEnvironment(): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|INIT_CWD$)/i.test(name)));
}

/** Runs `command` in `cwd` to its end (bounded); resolves with its exit code and output, never rejects. */
function run(command: string, args: readonly string[], cwd: string, env: Readonly<Record<string, string>> = {}): Promise<Ran> {
  return new Promise((resolveRun) => {
    execFile(command, args, { cwd, env: { ...userEnvironment(), ...env }, timeout: CHILD_TIMEOUT_MS, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolveRun({ code, stdout, output: `${stdout}${stderr}${error !== null && error.killed ? `\n(killed after ${CHILD_TIMEOUT_MS} ms)` : ''}` });
    });
  });
}

/** Runs `command` (as {@link run}); resolves with its stdout when it exits 0, else rejects with its output. */
async function mustRun(command: string, args: readonly string[], cwd: string, env: Readonly<Record<string, string>> = {}): Promise<string> {
  const ran = await run(command, args, cwd, env);
  if (ran.code !== 0) throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${ran.code}:\n${ran.output}`);
  return ran.stdout;
}

/** `npm pack` of the package in `dir` into `destination`, scripts off: the tarball and its file list. */
async function pack(dir: string, destination: string): Promise<Packed> {
  const output = await mustRun('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination, '--loglevel', 'error'], dir);
  const [result] = JSON.parse(output.slice(output.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  return { tarball: join(destination, result!.filename), files: result!.files.map((file) => file.path).sort() };
}

function writeFiles(dir: string, files: Readonly<Record<string, string>>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

/** A scratch project with `dependencies` (the tarballs), as a user sets one up: its install-script policy, strict. */
function scratchProject(dir: string, dependencies: Readonly<Record<string, string>>, devDependencies: Readonly<Record<string, string>> = {}): void {
  writeFiles(dir, {
    'package.json': JSON.stringify({ name: 'lfaas-consumer', version: '1.0.0', private: true, type: 'module', dependencies, devDependencies, allowScripts: { zeromq: true, 'msgpackr-extract': true, lmdb: true, esbuild: true } }, null, 2),
    '.npmrc': 'strict-allow-scripts=true\n',
  });
}

const STRICT_COMPILER_OPTIONS = {
  target: 'ES2023',
  lib: ['ES2023'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  types: ['node'],
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  verbatimModuleSyntax: true,
  isolatedModules: true,
  // The packages' declarations are checked too, not only the consumer's use of them.
  skipLibCheck: false,
  rootDir: 'src',
  outDir: 'out',
};

const tsconfig = (include: readonly string[], noEmit = false): string => JSON.stringify({ compilerOptions: { ...STRICT_COMPILER_OPTIONS, noEmit }, include }, null, 2);

/** A function module the consumer registers by path (bundled by esbuild) and imports for its type. */
const SQUARE_TS = `import type { FunctionContext } from '@lattice-faas/client';

/** Squares x and counts its calls in the KVS. */
export default async function square(x: number, ctx: FunctionContext): Promise<number> {
  const calls = ((await ctx.get('pack/square-calls')) as number | null | undefined) ?? 0;
  await ctx.put('pack/square-calls', calls + 1);
  return x * x;
}
`;

/** The consumer: the client's API and types against a real cluster (addresses and token from the environment). */
const CONSUMER_TS = `import { Counter, HybridClock, LatticeFaas, LfaasError, Lww, ref } from '@lattice-faas/client';
import type { FunctionHandle } from '@lattice-faas/client';
import type square from './square.js';

const addresses = (name: string): string[] => (process.env[name] ?? '').split(',').filter((address) => address !== '');
const faas = await LatticeFaas.connect({ routing: addresses('LFAAS_ROUTING'), schedulers: addresses('LFAAS_SCHEDULERS') });
try {
  const clock = new HybridClock('pack-consumer', () => Date.now());
  const add: FunctionHandle<(a: number, b: number) => number> = await faas.register<(a: number, b: number) => number>('pack-add', { code: 'module.exports = (a, b) => a + b;' });
  const sum: number = await faas.call(add, [20, 22]);
  await faas.kvs.put('pack/n', Lww.write(clock, 40), { ack: 'replicated' });
  const viaRef: number = await faas.call(add, [ref('pack/n'), 2]);
  const sq = await faas.register<typeof square>('pack-square', new URL('./square.js', import.meta.url).pathname);
  const squared: number = await faas.call(sq, [7]);
  const squareCalls = (await faas.kvs.get<Lww<number>>('pack/square-calls'))?.reveal();
  await faas.kvs.put('pack/counter', Counter.ZERO.increment('a', 3).increment('b', 4), { ack: 'replicated' });
  const counter = (await faas.kvs.get<Counter>('pack/counter'))?.reveal();
  let missing = 'none';
  try {
    await faas.call('pack-never-registered');
  } catch (error) {
    missing = error instanceof LfaasError ? error.code : String(error);
  }
  console.log(JSON.stringify({ sum, viaRef, squared, squareCalls, counter, missing }));
} finally {
  await faas.close();
}
`;

/** Must fail the type-check: a function's result is not what the caller says. */
const BAD_TS = `import type { LatticeFaas } from '@lattice-faas/client';

export async function wrong(faas: LatticeFaas): Promise<string> {
  const add = await faas.register<(a: number, b: number) => number>('add', { code: 'module.exports = (a, b) => a + b;' });
  const text: string = await faas.call(add, [1, 2]);
  return text;
}
`;

/** The harness, as docs/testing.md shows it, from the installed server package. */
const HARNESS_TS = `import { createTestCluster, createTestContext } from 'lattice-faas/testing';
import type { FunctionContext } from 'lattice-faas/testing';
import square from './square.js';

async function visit(page: string, ctx: FunctionContext): Promise<number> {
  const hits = ((await ctx.get(page === 'home' ? 'hits' : page)) as number | undefined) ?? 0;
  await ctx.put('hits', hits + 1);
  return hits + 1;
}

const cluster = await createTestCluster();
let squared: number;
try {
  const sq = await cluster.register('square', square);
  squared = await cluster.call(sq, [7]);
} finally {
  await cluster.close();
}
const ctx = createTestContext({ kvs: { hits: 3 } });
const visits = await visit('home', ctx);
console.log(JSON.stringify({ squared, visits }));
`;

/** The light client (no esbuild installed): checks of code, the typed refusal to bundle, a call and a KVS read. */
const LIGHT_MJS = `import { ErrorCode, LatticeFaas, bundleFunction, checkFunctionCode } from '@lattice-faas/client';

const code = (promise) => promise.then(() => 'accepted', (error) => error.code);
const out = {};
out.plain = await code(checkFunctionCode('module.exports = (x) => x + 1;'));
out.builtin = await code(checkFunctionCode("module.exports = () => require('node:fs').readFileSync('/etc/passwd');"));
out.syntax = await code(checkFunctionCode('module.exports = (x) => {'));
out.bundle = await code(bundleFunction(new URL('./module.js', import.meta.url).pathname));
out.missingCode = ErrorCode.CLIENT_MISSING_DEPENDENCY;
const addresses = (name) => (process.env[name] ?? '').split(',').filter((address) => address !== '');
const faas = await LatticeFaas.connect({ routing: addresses('LFAAS_ROUTING'), schedulers: addresses('LFAAS_SCHEDULERS') });
try {
  const inc = await faas.register('pack-light-inc', { code: 'module.exports = async (x, ctx) => { await ctx.put("pack/light", x + 1); return x + 1; };' });
  out.call = await faas.call(inc, [41]);
  out.read = (await faas.kvs.get('pack/light'))?.reveal();
} finally {
  await faas.close();
}
console.log(JSON.stringify(out));
`;

/** The last line of a consumer's stdout, parsed. */
function resultOf(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('packages: packed, installed from their tarballs, type-checked and run', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'lfaas-pack-'));
  const full = join(scratch, 'full');
  const light = join(scratch, 'light');
  const cluster = new FaasCluster();
  let server: Packed;
  let client: Packed;
  let clusterEnv: Record<string, string>;
  const HAS_HARNESS = existsSync(join(root, 'dist', 'testing', 'index.js'));

  beforeAll(async () => {
    for (const built of ['dist/client/index.js', 'dist/client/index.d.ts', 'dist/cli/main.js', 'dist/sandbox-runtime/runtime.mjs']) {
      if (!existsSync(join(root, built))) throw new Error(`${built} is missing: run npm run build (npm test does)`);
    }
    await mustRun(process.execPath, [join(root, 'scripts', 'pack-client.js'), '--no-build'], root);
    const tarballs = join(scratch, 'tarballs');
    mkdirSync(tarballs);
    [server, client] = await Promise.all([pack(root, tarballs), pack(join(root, 'packages', 'client'), tarballs)]);
    scratchProject(full, { 'lattice-faas': `file:${server.tarball}`, '@lattice-faas/client': `file:${client.tarball}` }, { '@types/node': rootPackage.devDependencies!['@types/node']! });
    scratchProject(light, { '@lattice-faas/client': `file:${client.tarball}` });
    writeFiles(full, { 'src/square.ts': SQUARE_TS, 'src/consumer.ts': CONSUMER_TS, 'src/bad.ts': BAD_TS, 'src/harness.ts': HARNESS_TS, 'tsconfig.json': tsconfig(['src/consumer.ts', 'src/square.ts']), 'tsconfig.bad.json': tsconfig(['src/bad.ts'], true), 'tsconfig.harness.json': tsconfig(['src/harness.ts', 'src/square.ts']) });
    writeFiles(light, { 'light.mjs': LIGHT_MJS, 'module.js': 'export default (x) => x;\n' });
    // The installs and the cluster's start overlap: both wait on other processes.
    await Promise.all([
      mustRun('npm', NPM_INSTALL, full),
      mustRun('npm', NPM_INSTALL, light),
      cluster.startAll({ nodes: 1, schedulers: 1, executors: 1, workers: 2 }).then(() => {
        clusterEnv = { LFAAS_ROUTING: cluster.routingAddresses.join(','), LFAAS_SCHEDULERS: cluster.schedulerAddresses.join(','), LFAAS_TOKEN: adminToken() };
      }),
    ]);
  }, 240_000);

  afterAll(async () => {
    await cluster.stop();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('the server package ships compiled JavaScript with declarations, bin and docs; no sources, tests, benches or maps', async () => {
    const files = server.files;
    for (const wanted of ['bin/lfaas.js', 'README.md', 'SECURITY.md', 'package.json', 'dist/cli/main.js', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/kvs/index.js', 'dist/executor/index.d.ts', 'dist/sandbox-runtime/runtime.mjs', 'dist/protocol/generated/messages.d.ts']) {
      expect(files, wanted).toContain(wanted);
    }
    expect(files, 'docs/README.md').toContain('docs/README.md');
    expect(files.filter((file) => !/^(bin|dist|docs)\//.test(file) && !['package.json', 'README.md', 'SECURITY.md', 'ARCHITECTURE.md'].includes(file))).toEqual([]);
    const sources = files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'));
    const tests = files.filter((file) => /\.test(-d)?\.(js|d\.ts)$/.test(file) || /^dist\/(test|bench)\//.test(file) || /(^|\/)results\//.test(file));
    const maps = files.filter((file) => file.endsWith('.map'));
    expect({ sources, tests, maps }).toEqual({ sources: [], tests: [], maps: [] });
    // Every module has its declarations. (A module whose source is gone is a leftover of an older
    // build in this working tree: the prepack this test skips empties dist/ first; a fresh clone has none.)
    const compiled = files.filter((file) => file.startsWith('dist/') && file.endsWith('.js') && existsSync(join(root, file.replace(/^dist\//, '').replace(/\.js$/, '.ts'))));
    expect(compiled.length).toBeGreaterThan(100);
    expect(compiled.filter((file) => !files.includes(file.replace(/\.js$/, '.d.ts')))).toEqual([]);
    // Every export has types and a module, both shipped.
    for (const [subpath, target] of Object.entries(rootPackage.exports!)) {
      if (typeof target === 'string') continue;
      expect(target['types'], subpath).toBeDefined();
      expect(files, subpath).toContain(target['types']!.replace(/^\.\//, ''));
      expect(files, subpath).toContain(target['default']!.replace(/^\.\//, ''));
    }
    // What the shipped modules import is a dependency (a devDependency would be missing for users).
    const declared = new Set([rootPackage.name, ...Object.keys(rootPackage.dependencies ?? {})]);
    const { packages: imported, modules } = await importsOf(compiled);
    expect([...LIGHT_DEPENDENCIES, 'lmdb', 'esbuild'].filter((name) => !imported.has(name))).toEqual([]);
    expect([...imported].filter(([name]) => !declared.has(name)).map(([name, file]) => `${name} (${file})`)).toEqual([]);
    // ... and every module they reach is shipped (none is a test-support module left out by `files`).
    expect(modules.length).toBeGreaterThanOrEqual(compiled.length);
    expect(modules.filter((module) => !files.includes(module))).toEqual([]);
    expect(rootPackage.scripts?.['prepack']).toContain('npm run -s build');
    expect(rootPackage.publishConfig).toMatchObject({ access: 'public', provenance: true });
  });

  it('the client package ships the client closure only, and depends on the light packages alone', () => {
    const clientPackage = JSON.parse(readFileSync(join(root, 'packages', 'client', 'package.json'), 'utf8')) as PackageJson;
    const files = client.files;
    expect(files).toContain('dist/client/index.js');
    expect(files).toContain('dist/client/index.d.ts');
    expect(files).toContain('dist/protocol/generated/messages.d.ts');
    expect(files).toContain('README.md');
    expect(files.filter((file) => !/^dist\/(client|lattices|protocol)\//.test(file) && file !== 'package.json' && file !== 'README.md')).toEqual([]);
    expect(files.filter((file) => /\.test\.|\.map$|^dist\/protocol\/testing\./.test(file) || (file.endsWith('.ts') && !file.endsWith('.d.ts')))).toEqual([]);
    expect(Object.keys(clientPackage.dependencies ?? {}).sort()).toEqual(LIGHT_DEPENDENCIES);
    expect(clientPackage.peerDependencies).toEqual({ esbuild: rootPackage.dependencies!['esbuild'] });
    expect(clientPackage.peerDependenciesMeta).toEqual({ esbuild: { optional: true } });
    // Version, engines and ranges follow the root package.json (scripts/pack-client.js, run above, checks the same).
    expect(clientPackage.version).toBe(rootPackage.version);
    expect(clientPackage.engines).toEqual(rootPackage.engines);
    for (const name of LIGHT_DEPENDENCIES) expect(clientPackage.dependencies![name], name).toBe(rootPackage.dependencies![name]);
  });

  it('installed alone, the client brings the wire packages and no server package', () => {
    const installed = (name: string): boolean => existsSync(join(light, 'node_modules', name, 'package.json'));
    expect(LIGHT_DEPENDENCIES.filter((name) => !installed(name))).toEqual([]);
    expect(SERVER_PACKAGES.filter(installed)).toEqual([]);
  });

  it('a consumer type-checks against the declarations with strict settings; a type error fails the check', async () => {
    const good = await run(TSC, ['-p', 'tsconfig.json'], full);
    expect(good.output).toBe('');
    expect(good.code).toBe(0);
    const bad = await run(TSC, ['-p', 'tsconfig.bad.json'], full);
    expect(bad.code).not.toBe(0);
    expect(bad.output).toMatch(/src\/bad\.ts\(5,9\): error TS2322/);
  });

  it('the compiled consumer runs against a secure cluster: code and module functions, ref arguments, KVS reads and writes', async () => {
    if (!existsSync(join(full, 'out', 'consumer.js'))) await mustRun(TSC, ['-p', 'tsconfig.json'], full);
    const output = await mustRun(process.execPath, ['out/consumer.js'], full, clusterEnv);
    expect(resultOf(output)).toEqual({ sum: 42, viaRef: 42, squared: 49, squareCalls: 1, counter: 7, missing: 'SCHED_FUNCTION_NOT_FOUND' });
  });

  it('the installed `lfaas` command runs the packed CLI', async () => {
    expect((await mustRun(join(full, 'node_modules', '.bin', 'lfaas'), ['--version'], full)).trim()).toBe(rootPackage.version);
  });

  it('the light client without esbuild checks and registers { code }, calls it and reads the KVS; bundling a module is CLIENT_MISSING_DEPENDENCY', async () => {
    const output = await mustRun(process.execPath, ['light.mjs'], light, clusterEnv);
    expect(resultOf(output)).toEqual({ plain: 'accepted', builtin: 'EXEC_BAD_VALUE', syntax: 'EXEC_BAD_VALUE', bundle: 'CLIENT_MISSING_DEPENDENCY', missingCode: 'CLIENT_MISSING_DEPENDENCY', call: 42, read: 42 });
  });

  it.skipIf(!HAS_HARNESS)('the harness of lattice-faas/testing type-checks and runs from the installed package', async () => {
    const checked = await run(TSC, ['-p', 'tsconfig.harness.json'], full);
    expect(checked.output).toBe('');
    expect(checked.code).toBe(0);
    const output = await mustRun(process.execPath, ['out/harness.js'], full);
    expect(resultOf(output)).toEqual({ squared: 49, visits: 4 });
  });
});
