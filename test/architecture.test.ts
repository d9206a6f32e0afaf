/**
 * The house rules of the code, checked on the source tree:
 * - other folders are imported only through their `index.ts`, or their `portable.ts` (the
 *   socket-free face that code in a function sandbox may load); test files may also use a folder's
 *   `testing.ts`, its test-support face;
 * - dependencies point one way (`lattices` <- `protocol` <- `kvs` <- `executor`/`scheduler` <- `cli`;
 *   `monitor` on `lattices` and `protocol` only (its KVS access and node providers are its host's);
 *   `sandbox` on `lattices` and `protocol` only, `executor` on it; `client` on `lattices` and
 *   `protocol` only; `testing`, the in-process harness, on the roles below `cli`); examples' tests
 *   import the SDK and the harness only, as a user's tests would;
 * - no import cycles between files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FOLDERS = ['lattices', 'protocol', 'kvs', 'sandbox', 'executor', 'scheduler', 'monitor', 'client', 'ingress', 'dashboard', 'testing', 'cli', 'bench', 'examples', 'test'] as const;

/** Which folders each folder may import (besides itself). Tests and benches may use everything below them. */
const ALLOWED: Record<string, readonly string[]> = {
  lattices: [],
  protocol: ['lattices'],
  kvs: ['lattices', 'protocol'],
  // What runs next to user code: the language's values and the wire codecs, nothing with sockets.
  sandbox: ['lattices', 'protocol'],
  executor: ['lattices', 'protocol', 'kvs', 'sandbox'],
  scheduler: ['lattices', 'protocol', 'kvs'],
  monitor: ['lattices', 'protocol'],
  client: ['lattices', 'protocol'],
  // The HTTP ingress is a client of the cluster: the SDK, and the wire's value codecs.
  ingress: ['lattices', 'protocol', 'client'],
  // The dashboard is a client of the cluster (the SDK, the wire) that reads the monitor's events.
  dashboard: ['lattices', 'protocol', 'client', 'monitor'],
  cli: ['lattices', 'protocol', 'kvs', 'executor', 'scheduler', 'monitor', 'client', 'ingress', 'dashboard'],
  // The in-process test harness (lattice-faas/testing): the real machines and executor host on the in-memory network.
  testing: ['lattices', 'protocol', 'kvs', 'sandbox', 'executor', 'scheduler', 'client'],
  // An example's own code uses the SDK only; its tests (`*.test.ts`) also the harness, as a user's would.
  examples: ['client'],
  // The simulated halves of benchmarks run the simulator's scenarios (test/simulator, test/simulation only);
  // the application benchmarks drive the examples (bench/retwis.ts: examples/retwis through examples/index.ts).
  bench: ['lattices', 'protocol', 'kvs', 'sandbox', 'executor', 'scheduler', 'monitor', 'client', 'ingress', 'testing', 'cli', 'test', 'examples'],
  test: ['lattices', 'protocol', 'kvs', 'sandbox', 'executor', 'scheduler', 'monitor', 'client', 'ingress', 'dashboard', 'testing', 'cli', 'examples'],
};

function sourceFiles(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries) {
      const path = join(dir, name);
      if (name === 'node_modules' || name === 'generated' || name === 'peers' || name === 'results') continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
    }
  };
  walk(join(root, folder));
  return out;
}

/** Relative import specifiers of a file (static imports, re-exports and dynamic imports). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  const pattern = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;
  for (const match of text.matchAll(pattern)) {
    const specifier = match[1] ?? match[2] ?? match[3];
    if (specifier !== undefined && specifier.startsWith('.')) specifiers.push(specifier);
  }
  return specifiers;
}

function resolveTs(from: string, specifier: string): string {
  return resolve(dirname(from), specifier).replace(/\.js$/, '.ts');
}

const topFolder = (file: string): string => relative(root, file).split(sep)[0] ?? '';
const isTestFile = (file: string): boolean => file.endsWith('.test.ts') || file.endsWith('.test-d.ts') || topFolder(file) === 'test';

const files = FOLDERS.flatMap((folder) => sourceFiles(folder));
const graph = new Map<string, string[]>(files.map((file) => [file, relativeImports(file).map((s) => resolveTs(file, s))]));

/** Every cycle met by a depth-first walk, as the list of files from the repeated one back to it. */
function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[][] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file]);
      return;
    }
    state.set(file, 'visiting');
    for (const target of edges.get(file) ?? []) if (edges.has(target)) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of edges.keys()) visit(file, []);
  return cycles;
}

describe('architecture', () => {
  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(10);
    expect(graph.get(join(root, 'protocol', 'index.ts'))?.length).toBeGreaterThan(0);
  });

  it('imports other folders only through their index.ts or portable.ts (or testing.ts from tests)', () => {
    const violations: string[] = [];
    for (const [file, targets] of graph) {
      const own = topFolder(file);
      for (const target of targets) {
        const other = topFolder(target);
        if (other === own) continue;
        const inside = relative(join(root, other), target);
        // portable.ts: a folder's socket-free face, for code that runs in a function sandbox.
        const allowedFaces = isTestFile(file) ? ['index.ts', 'portable.ts', 'testing.ts'] : ['index.ts', 'portable.ts'];
        // A bench reaches into test/ for the simulator and its scenarios, nothing else.
        const simulation = own === 'bench' && other === 'test' && (inside.startsWith('simulation/') || inside.startsWith('simulator/'));
        if (!allowedFaces.includes(inside) && !simulation) violations.push(`${relative(root, file)} -> ${relative(root, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('keeps dependencies pointing one way', () => {
    const violations: string[] = [];
    for (const [file, targets] of graph) {
      const own = topFolder(file);
      for (const target of targets) {
        const other = topFolder(target);
        if (other === own || isTestFile(file)) continue;
        if (!(ALLOWED[own] ?? []).includes(other)) violations.push(`${relative(root, file)} -> ${other}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("examples' tests import what a user's would: the SDK and the test harness", () => {
    const violations: string[] = [];
    for (const [file, targets] of graph) {
      if (topFolder(file) !== 'examples' || !isTestFile(file)) continue;
      for (const target of targets) {
        const other = topFolder(target);
        if (other !== 'examples' && other !== 'client' && other !== 'testing') violations.push(`${relative(root, file)} -> ${other}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('has no import cycles', () => {
    expect(findCycles(graph).map((cycle) => cycle.map((f) => relative(root, f)).join(' -> '))).toEqual([]);
  });

  it('the cycle finder finds a planted cycle (so the check above can fail)', () => {
    const planted = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
    ]);
    expect(findCycles(planted)).toEqual([['a', 'b', 'c', 'a']]);
  });

  it('every folder has an index.ts', () => {
    const missing = ['lattices', 'protocol', 'kvs', 'executor', 'scheduler', 'client', 'testing', 'cli'].filter(
      (folder) => !graph.has(join(root, folder, 'index.ts')),
    );
    expect(missing).toEqual([]);
  });
});
