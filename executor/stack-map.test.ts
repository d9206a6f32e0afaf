/**
 * Stack traces of functions mapped to their sources: a real bundle (esbuild, with its source map,
 * as client/bundle.ts makes it),
 * run in a vm context under the sandbox's one-line wrapper and file name, throws; its frames map
 * back to the .ts file's lines, the host's frames are dropped, and hostile stack text is bounded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script, createContext } from 'node:vm';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { FRAMES_MAX, mappedStack } from './stack-map.js';

describe('mappedStack', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lfaas-stack-map-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `code` as the vm realm does (`<functionId>.js`, one wrapper line) and returns what `fn(...args)` throws. */
  const thrownBy = (code: string, functionId: string, args: unknown[]): Error => {
    const module = { exports: {} as unknown };
    new Script(`(function (module, exports) {\n${code}\n})(module, module.exports);`, { filename: `${functionId}.js` }).runInContext(createContext({ module }));
    const exported = module.exports as { default?: (...a: unknown[]) => unknown } | ((...a: unknown[]) => unknown);
    const fn = typeof exported === 'function' ? exported : exported.default!;
    try {
      fn(...args);
    } catch (error) {
      return error as Error;
    }
    throw new Error('expected a throw');
  };

  it('maps the function frames to the TypeScript source and drops the others', async () => {
    const file = join(dir, 'deep.ts');
    writeFileSync(file, ['type N = number;', 'function leaf(n: N): N {', '  throw new RangeError(`leaf ${n}`);', '}', '', 'export default function root(n: N): N {', '  return leaf(n * 2);', '}', ''].join('\n'));
    const result = await build({ entryPoints: [file], bundle: true, write: false, format: 'cjs', platform: 'neutral', target: 'node20', sourcemap: 'external', sourcesContent: false, outfile: 'function.js', logLevel: 'silent' });
    const bundled = { code: result.outputFiles.find((out) => !out.path.endsWith('.map'))!.text, sourceMap: result.outputFiles.find((out) => out.path.endsWith('.map'))?.text };
    expect(bundled.sourceMap).toBeDefined();
    const error = thrownBy(bundled.code, 'deep@3', [4]);
    const stack = `${error.stack}\n    at serve (/srv/lfaas/dist/sandbox/runtime.js:10:5)\n    at node:internal/process/task_queues:95:5`;
    const mapped = mappedStack(stack, 'deep@3', bundled.sourceMap);
    expect(mapped).toMatch(/^ {4}at leaf \(\S*deep\.ts:3:\d+\)$/m);
    expect(mapped).toMatch(/^ {4}at root \(\S*deep\.ts:7:\d+\)$/m);
    expect(mapped).not.toContain('/srv/');
    expect(mapped).not.toContain('node:internal');
    expect(mapped).not.toContain('RangeError');
    // Without a map, the frames keep their bundle positions (the wrapper line taken off).
    expect(mappedStack(stack, 'deep@3', undefined)).toMatch(/^ {4}at leaf \(deep@3\.js:\d+:\d+\)$/m);
    // A map that does not parse is no map.
    expect(mappedStack(stack, 'deep@4', '{not json')).toMatch(/deep@4?\.js|^$/);
  });

  it('is bounded: frames, names and input length; another file is never shown', () => {
    const frames = Array.from({ length: 500 }, (_, i) => `    at f${i} (hostile@1.js:${i + 2}:1)`).join('\n');
    expect(mappedStack(`Error: x\n${frames}`, 'hostile@1', undefined).split('\n')).toHaveLength(FRAMES_MAX);
    const longName = `    at ${'n'.repeat(5000)} (hostile@1.js:2:1)`;
    expect(mappedStack(longName, 'hostile@1', undefined)).toBe('    at <anonymous> (hostile@1.js:1:1)');
    expect(mappedStack(`${'x'.repeat(20_000)}\n    at f (hostile@1.js:2:1)`, 'hostile@1', undefined)).toBe('');
    expect(mappedStack('    at f (/etc/passwd:2:1)\n    at g (other@1.js:2:1)', 'hostile@1', undefined)).toBe('');
  });
});
