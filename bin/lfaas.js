#!/usr/bin/env node
// The `lfaas` command: runs the compiled CLI (dist/: the published package ships it; in a clone of
// the repository `npm run build` makes it). Says so plainly when Node is older than the supported
// versions (package.json `engines`) or dist/ is missing, instead of failing on a syntax or import error.
import { existsSync } from 'node:fs';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19) || major === 21 || (major === 22 && minor < 12)) {
  console.error(`lfaas: Node ${process.version} is not supported; use Node ^20.19 or >=22.12 (Node 24 LTS recommended)`);
  process.exit(1);
}
const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('lfaas: dist/cli/main.js is missing: run `npm run build` first');
  process.exit(1);
}
await import(main.href);
