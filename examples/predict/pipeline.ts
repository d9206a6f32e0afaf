/**
 * The pure parts of the prediction pipeline that the functions share (bundled into each): the
 * KVS keys of the models and labels, the labels, the classify step (`ctx.infer`), and the
 * combination of the models' probabilities into a top 5.
 */
import type { FunctionContext, TensorValue } from '../../client/index.js';
import { CLASSES, INPUT_NAME, OUTPUT_NAME } from './constants.js';
import type { ModelName } from './constants.js';

/**
 * `ctx`, whose `infer` runs a model (a platform capability: the executor runs it in its inference
 * process, see executor/inference.ts).
 */
export type InferContext = FunctionContext;

/** Where the models live in the KVS (chunked: client's putModel). */
export const MODEL_KEYS: Record<ModelName, string> = { squeezenet: 'predict/models/squeezenet', 'small-cnn': 'predict/models/small-cnn', tiny: 'predict/models/tiny' };
/** Where the labels live: a list of 1000 strings (generated unless replaced, see the README). */
export const LABELS_KEY = 'predict/labels';

const ADJECTIVES = ['amber', 'brisk', 'cobalt', 'dusky', 'eager', 'fuzzy', 'gentle', 'hollow', 'ivory', 'jolly', 'keen', 'lunar', 'misty', 'nimble', 'olive', 'plucky', 'quiet', 'rusty', 'silver', 'tawny', 'umber', 'vivid', 'woolly', 'young', 'zesty'];
const NOUNS = ['anchor', 'badger', 'canoe', 'dahlia', 'easel', 'falcon', 'gecko', 'harp', 'iguana', 'jigsaw', 'kettle', 'lantern', 'marmot', 'nutmeg', 'otter', 'parrot', 'quill', 'radish', 'saddle', 'teapot', 'urchin', 'violin', 'walrus', 'yak', 'zebra', 'acorn', 'beetle', 'cactus', 'dingo', 'eel', 'ferret', 'goblet', 'heron', 'ibis', 'jackal', 'koala', 'lemur', 'magpie', 'newt', 'oyster'];

/**
 * The 1000 labels the example uses: generated names ("amber anchor", "brisk anchor", ...), since
 * the models' weights are seeded, not trained. Put ImageNet's class names at {@link LABELS_KEY}
 * with real weights.
 */
export function generatedLabels(): string[] {
  return Array.from({ length: CLASSES }, (_, i) => `${ADJECTIVES[i % ADJECTIVES.length]} ${NOUNS[Math.floor(i / ADJECTIVES.length) % NOUNS.length]}`);
}

/** The probabilities of one model's output: float32 [1, 1000] (or [1000]). Throws TypeError otherwise. */
export function probabilitiesOf(tensor: unknown, what: string): Float32Array {
  const t = tensor as Partial<TensorValue> | undefined;
  if (t === undefined || t === null || t.type !== 'float32' || !(t.data instanceof Uint8Array) || !Array.isArray(t.dims)) throw new TypeError(`${what}: not a float32 tensor`);
  const elements = t.dims.reduce((a: number, b: number) => a * b, 1);
  if (elements !== CLASSES || t.data.byteLength !== CLASSES * 4) throw new TypeError(`${what}: ${t.dims.join('x')} values, not ${CLASSES} class scores`);
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Float32Array(CLASSES);
  for (let i = 0; i < CLASSES; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Runs model `name` on the image tensor and resolves with its probabilities tensor. */
export async function classify(ctx: InferContext, name: ModelName, image: TensorValue): Promise<TensorValue> {
  const outputs = await ctx.infer(MODEL_KEYS[name], { [INPUT_NAME]: image });
  const probabilities = outputs[OUTPUT_NAME];
  if (probabilities === undefined) throw new TypeError(`model ${name} gave no "${OUTPUT_NAME}" output (it gave ${Object.keys(outputs).join(', ')})`);
  probabilitiesOf(probabilities, name);
  return probabilities;
}

/** One class in a prediction. */
export interface Scored {
  readonly index: number;
  readonly label: string;
  readonly score: number;
}

/** What the pipeline answers. */
export interface Prediction {
  /** The best five classes of the combination, best first. */
  readonly top5: Scored[];
  /** Each model's best class. */
  readonly perModel: Scored[];
  readonly mode: CombineMode;
}

/** `average`: mean of the probabilities; `vote`: each model's top 5 votes 5..1 points, ties by average. */
export type CombineMode = 'average' | 'vote';

/** The `k` best indices of `scores`, best first (ties: lower index first). */
export function topK(scores: Float32Array | Float64Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    let at = best.length;
    while (at > 0 && scores[i]! > scores[best[at - 1]!]!) at--;
    if (at < k) {
      best.splice(at, 0, i);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/** Combines the models' probability tensors into a top 5 with scores. */
export function combine(outputs: readonly unknown[], labels: readonly string[], mode: CombineMode = 'average'): Prediction {
  if (outputs.length === 0) throw new TypeError('nothing to combine');
  const all = outputs.map((output, i) => probabilitiesOf(output, `model ${i}`));
  const label = (index: number): string => (typeof labels[index] === 'string' ? labels[index]! : `class ${index}`);
  const average = new Float64Array(CLASSES);
  for (const probabilities of all) for (let i = 0; i < CLASSES; i++) average[i]! += probabilities[i]! / all.length;
  let ranking = average;
  if (mode === 'vote') {
    ranking = new Float64Array(CLASSES);
    for (const probabilities of all) topK(probabilities, 5).forEach((index, rank) => (ranking[index]! += 5 - rank));
    // Ties between equal votes go to the higher average (< 1 point, so votes stay first).
    for (let i = 0; i < CLASSES; i++) ranking[i]! += average[i]! * 0.5;
  }
  const top5 = topK(ranking, 5).map((index) => ({ index, label: label(index), score: average[index]! }));
  const perModel = all.map((probabilities) => {
    const index = topK(probabilities, 1)[0]!;
    return { index, label: label(index), score: probabilities[index]! };
  });
  return { top5, perModel, mode };
}

/** The labels at {@link LABELS_KEY}, or the generated ones when none (or not a list of strings) are there. */
export async function readLabels(ctx: FunctionContext): Promise<readonly string[]> {
  const stored = await ctx.get(LABELS_KEY);
  return Array.isArray(stored) && stored.length === CLASSES && stored.every((label) => typeof label === 'string') ? stored : generatedLabels();
}

/** The KVS key of a run's intermediate tensor in the "functions + storage" variant. */
export function runKey(callId: string, stage: string): string {
  return `predict/runs/${callId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80)}/${stage}`;
}

/**
 * Writes a float32 tensor's bytes at `key` (the "functions + storage" variant; the shape is the
 * stage's, known to its reader: a value of plain bytes is also the cheapest for the KVS to merge).
 */
export async function writeTensor(ctx: FunctionContext, key: string, tensor: TensorValue): Promise<void> {
  await ctx.put(key, tensor.data);
}

/** Reads the float32 tensor of shape `dims` a stage before wrote at `key`. Throws TypeError when it is not there. */
export async function readTensor(ctx: FunctionContext, key: string, dims: readonly number[]): Promise<TensorValue> {
  const data = await ctx.get(key);
  const bytes = dims.reduce((a, b) => a * b, 4);
  if (!(data instanceof Uint8Array) || data.byteLength !== bytes) throw new TypeError(`no ${dims.join('x')} tensor at ${key}`);
  return { type: 'float32', dims: [...dims], data };
}
