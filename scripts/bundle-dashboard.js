// Builds the dashboard page (dashboard/web) into dist/dashboard-web: index.html as it is, and
// main.ts with everything it imports (uPlot and its CSS included) bundled by esbuild into app.js
// and app.css, for browsers, minified. Nothing is loaded from elsewhere at run time. The page's
// TypeScript is type-checked first (its own tsconfig: the DOM's types, which the rest has not).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'dashboard', 'web');
const out = join(root, 'dist', 'dashboard-web');
execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(web, 'tsconfig.json')], { stdio: 'inherit' });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(web, 'main.ts') },
  outdir: out,
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
  legalComments: 'none',
});
copyFileSync(join(web, 'index.html'), join(out, 'index.html'));
