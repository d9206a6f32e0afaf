/**
 * Demo 8 (`lfaas up --demo predict`): prediction serving (examples/predict/). Installs the ML
 * packages on first use (onnxruntime-node, ~290 MB, once, into .lfaas/ml; saying so), builds the
 * three models with seeded weights, puts them in the KVS, deploys the pipeline (preprocess ->
 * SqueezeNet | small CNN | tiny, in parallel -> combine), classifies the sample image and prints
 * the top 5 with the first call's time (the executors load the models) and the warm calls'.
 *
 * cli/ may not import examples/ (test/architecture.test.ts): the example's module is loaded from
 * disk at run time (the compiled one beside dist/cli/, or the TypeScript source under a test
 * runner), as the other demos find their function modules; its shape is written here.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DagHandle, LatticeFaas } from '../client/index.js';
import { ensureMlInstalled, loadOnnxProto, mlInstalled } from './ml-install.js';

interface Scored {
  readonly index: number;
  readonly label: string;
  readonly score: number;
}
interface Prediction {
  readonly top5: readonly Scored[];
  readonly perModel: readonly Scored[];
}
/** What the demo uses of examples/predict/deploy.ts. */
interface PredictExample {
  readonly MODEL_NAMES: readonly string[];
  buildModels(onnx: unknown): Record<string, Uint8Array>;
  deployPredict(faas: LatticeFaas, options: { models: Record<string, Uint8Array> }): Promise<{ dag: DagHandle<Record<string, readonly unknown[]>, Prediction> }>;
  sampleImage(): Uint8Array;
}

/** The example's deploy module: compiled beside dist/cli/, or the source when run from cli/. */
async function loadExample(): Promise<PredictExample> {
  const candidates = [new URL('../examples/predict/deploy.js', import.meta.url), new URL('../examples/predict/deploy.ts', import.meta.url)].map((url) => fileURLToPath(url));
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) throw new Error(`examples/predict not found (looked for ${candidates.join(', ')}; run npm run build)`);
  return (await import(pathToFileURL(found).href)) as PredictExample;
}

/**
 * Runs the demo. `asked`: named on the command line (`--demo predict`); when it is not and the ML
 * packages are not installed, the demo is skipped (with how to run it) rather than install 290 MB.
 */
export async function predictDemo(faas: LatticeFaas, asked: boolean): Promise<boolean> {
  console.log('\ndemo 8: prediction serving (examples/predict/): preprocess a PNG, three classifiers in parallel (SqueezeNet 1.1, a small CNN, a tiny one; seeded weights), combine into a top 5\n');
  if (!asked && !mlInstalled()) {
    console.log('  skipped: the ML packages (onnxruntime-node, ~290 MB) are not installed; `lfaas up --demo predict` (or `lfaas ml install`) installs them once');
    return true;
  }
  const mlDir = await ensureMlInstalled({ log: (line) => console.log(`  ${line}`) });
  const example = await loadExample();
  let started = performance.now();
  const models = example.buildModels(loadOnnxProto(mlDir));
  const sizes = example.MODEL_NAMES.map((name) => `${name} ${((models[name]?.byteLength ?? 0) / 1e6).toFixed(2)} MB`).join(', ');
  const { dag } = await example.deployPredict(faas, { models });
  console.log(`  built the models (${sizes}), put them in the KVS in chunks and deployed the DAG in ${(performance.now() - started).toFixed(0)} ms`);
  const png = example.sampleImage();
  const input = { 'predict/preprocess': [png] };
  started = performance.now();
  const first = await faas.callDag(dag, input, { timeoutMs: 120_000 });
  const firstMs = performance.now() - started;
  const warm: number[] = [];
  let same = true;
  for (let i = 0; i < 5; i++) {
    started = performance.now();
    const again = await faas.callDag(dag, input, { timeoutMs: 60_000 });
    warm.push(performance.now() - started);
    same &&= again.top5.map((entry) => entry.index).join() === first.top5.map((entry) => entry.index).join();
  }
  warm.sort((a, b) => a - b);
  console.log(`  the sample image (${png.byteLength} bytes, 320 x 240 PNG), top 5 (labels are generated names: the weights are seeded, not trained):`);
  for (const entry of first.top5) console.log(`    ${entry.label.padEnd(16)} ${(entry.score * 100).toFixed(2)}%`);
  console.log(`  each model's best: ${first.perModel.map((entry, i) => `${example.MODEL_NAMES[i]} -> ${entry.label}`).join(', ')}`);
  console.log(`  first call (the executors load the models from the KVS into their inference processes): ${firstMs.toFixed(1)} ms`);
  console.log(`  warm calls, median of 5:                                                              ${warm[2]!.toFixed(1)} ms`);
  const ok = first.top5.length === 5 && same;
  console.log(ok ? '\n  every call gave the same top 5. Real weights: see examples/predict/README.md.' : '\n  the calls disagree: this is a bug');
  return ok;
}
