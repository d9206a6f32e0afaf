import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runAll } from './run-all.js';

/**
 * A stand-in for dist/bench/main.js: `ok` writes its document, `crash` exits 3, `silent` exits 0
 * without a document, `hang` starts a grandchild (its pid written to hang.pid) and never ends.
 */
const FAKE_MAIN = `
const { spawn } = require('node:child_process');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const [name] = process.argv.slice(2);
const dir = process.env.FAKE_RESULTS;
if (name === 'ok') writeFileSync(join(dir, 'ok.json'), JSON.stringify({ quick: process.argv.includes('--quick') }));
if (name === 'crash') process.exit(3);
if (name === 'hang') {
  const grandchild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'hang.pid'), String(grandchild.pid));
  setInterval(() => {}, 1000);
}
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('runAll', () => {
  it('runs each benchmark as its own process and reports crashes, overruns (their whole group killed) and missing documents', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-run-all-'));
    const main = join(dir, 'fake-main.cjs');
    writeFileSync(main, FAKE_MAIN);
    process.env['FAKE_RESULTS'] = dir;
    try {
      const failures = await runAll({ mainPath: main, names: ['ok', 'crash', 'silent', 'hang'], quick: true, resultsDir: dir, timeLimitMs: 3000 });
      expect(JSON.parse(readFileSync(join(dir, 'ok.json'), 'utf8'))).toEqual({ quick: true });
      expect(Object.fromEntries(failures)).toEqual({
        crash: 'exited with code 3',
        silent: 'exited 0 but wrote no new document',
        hang: 'overran its time limit of 0.05 min and was killed',
      });
      const grandchild = Number(readFileSync(join(dir, 'hang.pid'), 'utf8'));
      // Killed with its group (SIGKILL is delivered at once; wait boundedly for the kernel to reap it).
      for (let i = 0; i < 50 && alive(grandchild); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(alive(grandchild)).toBe(false);
    } finally {
      delete process.env['FAKE_RESULTS'];
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
