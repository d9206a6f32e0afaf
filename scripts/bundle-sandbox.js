// Bundles the sandbox process (dist/sandbox/process-main.js and all it imports: ses, msgpackr,
// the lattice library) into one file, dist/sandbox-runtime/runtime.mjs. A sandbox process may
// read that one file and nothing else (Node's permission model; the bubblewrap mount). The same
// for the inference process (dist/executor/inference-process.js -> dist/sandbox-runtime/inference.mjs),
// which also reads the ML folder (onnxruntime-node, loaded at run time from there).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const [entry, out] of [
  [join('sandbox', 'process-main.js'), 'runtime.mjs'],
  [join('executor', 'inference-process.js'), 'inference.mjs'],
]) {
  await build({
    entryPoints: [join(root, 'dist', entry)],
    outfile: join(root, 'dist', 'sandbox-runtime', out),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // msgpackr's native extension: a sandbox process may load no addon; msgpackr runs without it.
    external: ['msgpackr-extract'],
    logLevel: 'warning',
    legalComments: 'none',
  });
}
