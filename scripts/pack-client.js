// Fills packages/client/dist with what `@lattice-faas/client` ships: the compiled modules that
// dist/client/index.js reaches (its JavaScript and its declarations, so every `import type` of a
// .d.ts resolves too), at the same relative paths as in dist/ (client/, lattices/, protocol/).
// Then checks the package's metadata against that closure and the root package.json:
// - every bare import of the closure is a dependency (or the optional peer esbuild) of the client
//   package, and nothing else is: a server package (lmdb, pino, prom-client...) reached from the
//   client fails the pack, and so does a dependency the client no longer needs;
// - each dependency's range and the package's version equal the root package.json's.
//
// `node scripts/pack-client.js` builds the repository first (`npm run build`); `--no-build` uses
// dist/ as it is (the pack test, which runs beside other tests reading dist/). The client package's
// `prepack` runs it, so `npm pack ./packages/client` always ships a fresh build.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const packageDir = join(root, 'packages', 'client');
const ENTRY = join(dist, 'client', 'index.js');
/** Bare imports the client loads only when asked (client/bundle.ts: `import('esbuild')`): optional peers. */
const OPTIONAL_PEERS = new Set(['esbuild']);
/** At most this many files in the closure (today ~60): a runaway walk stops with an error. */
const CLOSURE_FILES_MAX = 500;

const BUILTINS = new Set(builtinModules);

/**
 * The module specifiers of a .js or .d.ts file: static imports and re-exports, side-effect imports,
 * dynamic imports. Comment lines go first (TSDoc examples import things too); tsc writes every
 * comment line it keeps starting with `//`, `/*` or `*`. A specifier misread here names a file
 * missing from dist/ or a package the metadata check refuses: loud, never silent.
 */
export function specifiersOf(source) {
  const text = source
    .split('\n')
    .filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line))
    .join('\n');
  const found = new Set();
  for (const pattern of [/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const match of text.matchAll(pattern)) found.add(match[1]);
  }
  return [...found];
}

/** The package a bare specifier names (`@scope/name/sub` -> `@scope/name`), or undefined for a Node built-in. */
export function packageOf(specifier) {
  if (specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  return BUILTINS.has(name) ? undefined : name;
}

/** The compiled files dist/client/index.js reaches, and the packages they import. */
export function clientClosure() {
  if (!existsSync(ENTRY)) throw new Error(`${relative(root, ENTRY)} is missing: run npm run build`);
  const files = new Set();
  const packages = new Set();
  const queue = [ENTRY];
  while (queue.length > 0) {
    const js = queue.pop();
    if (files.has(js)) continue;
    if (files.size >= CLOSURE_FILES_MAX) throw new Error(`the client's closure passes ${CLOSURE_FILES_MAX} files`);
    if (!existsSync(js)) throw new Error(`${relative(root, js)} is imported but missing from dist/`);
    if (!js.startsWith(dist + sep)) throw new Error(`${js} is outside dist/`);
    files.add(js);
    const declarations = js.replace(/\.js$/, '.d.ts');
    const texts = [readFileSync(js, 'utf8')];
    if (existsSync(declarations)) {
      files.add(declarations);
      texts.push(readFileSync(declarations, 'utf8'));
    }
    for (const specifier of texts.flatMap(specifiersOf)) {
      if (specifier.startsWith('.')) queue.push(resolve(dirname(js), specifier));
      else {
        const name = packageOf(specifier);
        if (name !== undefined) packages.add(name);
      }
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

/** Problems of packages/client/package.json against the closure and the root package.json; empty when in sync. */
export function metadataProblems(packages) {
  const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const clientPackage = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  const problems = [];
  if (clientPackage.version !== rootPackage.version) problems.push(`version ${clientPackage.version}, the root's is ${rootPackage.version}`);
  if (JSON.stringify(clientPackage.engines) !== JSON.stringify(rootPackage.engines)) problems.push(`engines ${JSON.stringify(clientPackage.engines)}, the root's are ${JSON.stringify(rootPackage.engines)}`);
  const wanted = packages.filter((name) => !OPTIONAL_PEERS.has(name));
  const declared = Object.keys(clientPackage.dependencies ?? {});
  for (const name of wanted) {
    if (!declared.includes(name)) problems.push(`the client imports ${name}, not among its dependencies`);
    else if (clientPackage.dependencies[name] !== rootPackage.dependencies?.[name]) problems.push(`dependency ${name} ${clientPackage.dependencies[name]}, the root's is ${rootPackage.dependencies?.[name]}`);
  }
  for (const name of declared) if (!wanted.includes(name)) problems.push(`dependency ${name} is not imported by the client`);
  for (const name of packages.filter((name) => OPTIONAL_PEERS.has(name))) {
    if (clientPackage.peerDependencies?.[name] !== rootPackage.dependencies?.[name]) problems.push(`peer ${name} ${clientPackage.peerDependencies?.[name]}, the root's is ${rootPackage.dependencies?.[name]}`);
    if (clientPackage.peerDependenciesMeta?.[name]?.optional !== true) problems.push(`peer ${name} is not optional`);
  }
  return problems;
}

function main() {
  if (!process.argv.includes('--no-build')) {
    const built = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
    if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status})`);
  }
  const { files, packages } = clientClosure();
  const problems = metadataProblems(packages);
  if (problems.length > 0) throw new Error(`packages/client/package.json is out of sync:\n  ${problems.join('\n  ')}`);
  const out = join(packageDir, 'dist');
  rmSync(out, { recursive: true, force: true });
  for (const file of files) {
    const target = join(out, relative(dist, file));
    mkdirSync(dirname(target), { recursive: true });
    cpSync(file, target);
  }
  console.log(`pack-client: ${files.length} files -> ${relative(root, out)}; dependencies: ${packages.join(', ')}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (error) {
    console.error(`pack-client: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
