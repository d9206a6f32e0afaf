import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('generated protobuf code', () => {
  it('is what `npm run gen:proto` makes from the .proto files today (deterministic, up to date)', () => {
    const out = mkdtempSync(join(tmpdir(), 'lfaas-proto-'));
    try {
      execFileSync(process.execPath, [join(root, 'scripts', 'gen-proto.js'), out], { stdio: 'pipe' });
      for (const file of ['messages.js', 'messages.d.ts']) {
        expect(readFileSync(join(out, file), 'utf8')).toBe(readFileSync(join(root, 'protocol', 'generated', file), 'utf8'));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
