/**
 * Deploys the prediction pipeline: builds the three models (or takes the ones given, such as real
 * `.onnx` files), puts them in the KVS in chunks, puts the labels, registers the functions and two
 * DAGs, and resolves with their handles, for the tests, the demo and the benchmark alike.
 *
 * The functions and DAGs are named under `predict/` (their owner: one pool of sandbox processes
 * holds them all, so the five stages of a run share warm processes instead of each taking one),
 * and so are the keys they use (`predict/models/...`, `predict/labels`, `predict/runs/...`).
 *
 * - `predict/pipeline`: preprocess -> (squeezenet | small-cnn | tiny, in parallel branches) -> combine; the
 *   tensors travel between the functions as DAG values.
 * - `predict/stored-pipeline` ("functions + storage", as a pipeline of FaaS functions over object storage
 *   would be): the same stages, each writing its tensor to the KVS and passing the key, the next
 *   reading it back; the last deletes them.
 *
 * @example
 * ```ts
 * const onnx = loadOnnxProto();                                   // cli's, from the ML folder
 * const predict = await deployPredict(faas, { models: buildModels(onnx) });
 * const prediction = await faas.callDag(predict.dag, { 'predict/preprocess': [sampleImage()] });
 * console.log(prediction.top5);                                   // [{ index, label, score }, ...]
 * ```
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HybridClock, Lww, putModel } from '../../client/index.js';
import type { DagDefinition, DagHandle, LatticeFaas, ModelManifest, RegisterOptions } from '../../client/index.js';
import { MODEL_NAMES } from './constants.js';
import type { ModelName } from './constants.js';
import { LABELS_KEY, MODEL_KEYS, generatedLabels } from './pipeline.js';
import type { Prediction } from './pipeline.js';

/** The functions, by role: the module beside this file and the registered name. */
export const PREDICT_FUNCTIONS = {
  preprocess: { module: 'preprocess', name: 'predict/preprocess' },
  squeezenet: { module: 'classify-squeezenet', name: 'predict/squeezenet' },
  'small-cnn': { module: 'classify-small-cnn', name: 'predict/small-cnn' },
  tiny: { module: 'classify-tiny', name: 'predict/tiny' },
  combine: { module: 'combine', name: 'predict/combine' },
} as const;

export const STORED_FUNCTIONS = {
  preprocess: { module: 'stored-preprocess', name: 'predict/stored-preprocess' },
  squeezenet: { module: 'stored-classify-squeezenet', name: 'predict/stored-squeezenet' },
  'small-cnn': { module: 'stored-classify-small-cnn', name: 'predict/stored-small-cnn' },
  tiny: { module: 'stored-classify-tiny', name: 'predict/stored-tiny' },
  combine: { module: 'stored-combine', name: 'predict/stored-combine' },
} as const;

export const PREDICT_DAG = 'predict/pipeline';
export const STORED_DAG = 'predict/stored-pipeline';

/** The DAGs' input: the PNG file's bytes to the first function. */
export type PredictInput = { readonly 'predict/preprocess': readonly [png: Uint8Array] };
export type StoredInput = { readonly 'predict/stored-preprocess': readonly [png: Uint8Array] };

export interface PredictDeployment {
  readonly dag: DagHandle<PredictInput, Prediction>;
  readonly storedDag: DagHandle<StoredInput, Prediction>;
  /** The models' manifests as put in the KVS. */
  readonly manifests: Record<ModelName, ModelManifest>;
}

export interface DeployPredictOptions {
  /** The models' `.onnx` bytes (buildModels(onnx) for the seeded ones, or real files). */
  readonly models: Record<ModelName, Uint8Array>;
  /** The labels (1000 strings; default the generated ones). */
  readonly labels?: readonly string[];
  /** Options of every function (default: 30 s timeout, 256 MiB). */
  readonly register?: RegisterOptions;
}

/** The module of function `file` (without extension): the TypeScript source, or the compiled file when run from dist/. */
export function predictModule(file: string): string {
  const source = fileURLToPath(new URL(`./${file}.ts`, import.meta.url));
  return existsSync(source) ? source : fileURLToPath(new URL(`./${file}.js`, import.meta.url));
}

/** Puts the models and labels in the KVS, registers the functions and both DAGs. */
export async function deployPredict(faas: LatticeFaas, options: DeployPredictOptions): Promise<PredictDeployment> {
  const manifests = {} as Record<ModelName, ModelManifest>;
  for (const name of MODEL_NAMES) manifests[name] = await putModel(faas, MODEL_KEYS[name], options.models[name]);
  const labels = options.labels ?? generatedLabels();
  if (labels.length !== 1000 || labels.some((label) => typeof label !== 'string')) throw new TypeError('labels are 1000 strings');
  await faas.kvs.put(LABELS_KEY, Lww.write(new HybridClock('deploy-predict', () => Date.now()), [...labels]), { ack: 'replicated' });
  const register: RegisterOptions = { timeoutMs: 30_000, memoryMb: 256, ...options.register };
  const registerAll = async (functions: typeof PREDICT_FUNCTIONS | typeof STORED_FUNCTIONS) => {
    const entries = await Promise.all(Object.entries(functions).map(async ([role, { module, name }]) => [role, await faas.register(name, predictModule(module), register)] as const));
    return Object.fromEntries(entries) as Record<keyof typeof PREDICT_FUNCTIONS, { name: string; version: number }>;
  };
  const plain = await registerAll(PREDICT_FUNCTIONS);
  const stored = await registerAll(STORED_FUNCTIONS);
  // The typed builder wants literal names; the graph is small enough to write as data.
  const definition = (name: string, handles: Record<keyof typeof PREDICT_FUNCTIONS, { name: string; version: number }>): DagDefinition<unknown, Prediction> => {
    const branches = [handles.squeezenet.name, handles['small-cnn'].name, handles.tiny.name];
    return {
      name,
      functions: [handles.preprocess.name, ...branches, handles.combine.name],
      edges: [...branches.map((branch) => [handles.preprocess.name, branch] as const), ...branches.map((branch) => [branch, handles.combine.name] as const)],
    } as DagDefinition<unknown, Prediction>;
  };
  const dagHandle = (await faas.registerDag(definition(PREDICT_DAG, plain))) as unknown as DagHandle<PredictInput, Prediction>;
  const storedDag = (await faas.registerDag(definition(STORED_DAG, stored))) as unknown as DagHandle<StoredInput, Prediction>;
  return { dag: dagHandle, storedDag, manifests };
}

// What a user of the example needs, from this one module.
export { MODEL_NAMES, CLASSES, INPUT_NAME, INPUT_SHAPE, OUTPUT_NAME } from './constants.js';
export type { ModelName } from './constants.js';
export { buildModels, MODEL_SEEDS } from './models.js';
export type { OnnxProto } from './models.js';
export { decodePng, encodePng, imageTensor, preprocessPng, sampleImage } from './image.js';
export type { RgbImage } from './image.js';
export { LABELS_KEY, MODEL_KEYS, combine, generatedLabels, probabilitiesOf, topK } from './pipeline.js';
export type { CombineMode, InferContext, Prediction, Scored } from './pipeline.js';
