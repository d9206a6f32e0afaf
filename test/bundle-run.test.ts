/**
 * From a TypeScript module to a result: the SDK bundles a function module (with a local import)
 * into one CommonJS body, and the executor's runtime pool runs it. Imports of Node built-ins and
 * syntax errors are typed errors at bundling time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE_BYTES_MAX, bundleFunction, checkFunctionCode } from '../client/index.js';
import { RuntimePool } from '../executor/index.js';

describe('bundle a TypeScript function and run it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lfaas-bundle-'));
  const pool = new RuntimePool({ prewarm: 1, memoryMb: 64 });
  afterAll(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('bundles a module with a local import and a default export, and the pool runs it', async () => {
    file('helper.ts', 'export function increment(x: number): number { return x + 1; }\n');
    const entry = file('double-next.ts', "import { increment } from './helper';\nexport default async function doubleNext(x: number): Promise<{ value: number }> { return { value: increment(x) * 2 }; }\n");
    const { code, bytes } = await bundleFunction(entry);
    expect(bytes).toBeGreaterThan(0);
    expect(code).not.toContain('import ');
    expect(await pool.run({ id: 'double-next@1', code, memoryMb: 64, timeoutMs: 2000 }, [20])).toEqual({ value: 42 });
  });

  it('bundles an import of the SDK as the lattice library, which runs inside a function', async () => {
    const entry = file(
      'count.ts',
      "import { Counter } from 'lattice-faas/client';\nexport default (by: number) => { const counter = Counter.ZERO.increment('me', by).increment('you', 2); return { total: counter.reveal(), bytes: counter.encode().byteLength }; };\n",
    );
    const { code } = await bundleFunction(entry);
    // The lattice library only: none of the SDK's sockets, files or workers came along.
    expect(code).not.toMatch(/require\(["'](node:)?(fs|net|worker_threads|child_process)["']\)/);
    const result = (await pool.run({ id: 'count@1', code, memoryMb: 64, timeoutMs: 5000 }, [3])) as { total: number; bytes: number };
    expect(result.total).toBe(5);
    expect(result.bytes).toBeGreaterThan(0);
  });

  it('refuses a Node built-in import and a syntax error with EXEC_BAD_VALUE', async () => {
    const fs = file('uses-fs.ts', "import { readFileSync } from 'node:fs';\nexport default () => readFileSync('/etc/passwd', 'utf8');\n");
    await expect(bundleFunction(fs)).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE', message: expect.stringContaining('node:fs') });
    const broken = file('broken.ts', 'export default (x: number) => {\n');
    await expect(bundleFunction(broken)).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(bundleFunction(join(dir, 'missing.ts'))).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
  });

  it('checks code given as is (register(name, { code })) as it checks a bundle: built-ins, files, syntax, size', async () => {
    const plain = 'module.exports = (x) => x * 2;';
    expect((await checkFunctionCode(plain)).code).toBe(plain);
    expect(await pool.run({ id: 'plain@1', code: plain, memoryMb: 64, timeoutMs: 2000 }, [21])).toBe(42);
    await expect(checkFunctionCode("const cp = require('child_process'); module.exports = () => cp.execSync('id');")).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE', message: expect.stringContaining('child_process') });
    await expect(checkFunctionCode("module.exports = () => require('node:fs').readFileSync('/etc/passwd');")).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE', message: expect.stringContaining('node:fs') });
    await expect(checkFunctionCode("module.exports = require('./elsewhere');")).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(checkFunctionCode('module.exports = (x) => {')).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(checkFunctionCode('')).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(checkFunctionCode(`module.exports = () => "${'x'.repeat(BUNDLE_BYTES_MAX)}";`)).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
  });
});
