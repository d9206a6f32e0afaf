/**
 * Prediction serving (examples/predict/) over real processes: a routing node, a storage node, a
 * scheduler and two executors, each running models in its inference process (`ctx.infer`).
 *
 * - The DAG `predict` (preprocess -> three classifiers in parallel -> combine) and its
 *   "functions + storage" variant give the same top 5 (labels, and scores within 1e-4) as the
 *   same models run with onnxruntime in this process on the same image.
 * - A model is loaded once per executor: more calls load nothing more (the executors' metrics).
 * - A malformed tensor and a missing model are typed errors in the function.
 *
 * Needs the ML folder (onnxruntime-node, onnx-proto): skipped, saying so, when it is not there.
 * Install it with `npx lfaas ml install` (CI does, before the tests).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HybridClock, Lww, putModel } from '../client/index.js';
import type { LatticeFaas } from '../client/index.js';
import { defaultMlDir, loadOnnxProto, mlInstalled } from '../cli/index.js';
import { SESSION_OPTIONS, fromOrtTensor, loadOnnxRuntime, toOrtTensor } from '../executor/index.js';
import { predict } from '../examples/index.js';
import { FaasCluster, metricValue, scrapeMetrics, untilServing } from './cluster.js';
import { code } from './wire-faults.js';

const mlDir = defaultMlDir();
const installed = mlInstalled(mlDir);
if (!installed) console.warn(`test/predict.test.ts skipped: the ML packages are not in ${mlDir}; install them with \`npx lfaas ml install\``);

/** The same pipeline in this process: preprocess, the three models with onnxruntime, combine. */
async function plainPrediction(models: Record<predict.ModelName, Uint8Array>, png: Uint8Array): Promise<predict.Prediction> {
  const ort = loadOnnxRuntime(mlDir);
  const image = predict.preprocessPng(png);
  const outputs = [];
  for (const name of predict.MODEL_NAMES) {
    const session = await ort.InferenceSession.create(models[name], SESSION_OPTIONS);
    const result = await session.run({ [predict.INPUT_NAME]: toOrtTensor(ort, image) });
    outputs.push(fromOrtTensor(result[predict.OUTPUT_NAME]!, name));
    await session.release();
  }
  return predict.combine(outputs, predict.generatedLabels(), 'average');
}

function expectSamePrediction(actual: predict.Prediction, expected: predict.Prediction): void {
  expect(actual.top5.map((entry) => [entry.index, entry.label])).toEqual(expected.top5.map((entry) => [entry.index, entry.label]));
  for (const [i, entry] of actual.top5.entries()) expect(Math.abs(entry.score - expected.top5[i]!.score)).toBeLessThan(1e-4);
  expect(actual.perModel.map((entry) => entry.index)).toEqual(expected.perModel.map((entry) => entry.index));
}

describe.skipIf(!installed)('prediction serving over real processes', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  let deployment: predict.PredictDeployment;
  let models: Record<predict.ModelName, Uint8Array>;
  const png = predict.sampleImage();

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 2, workers: 2 });
    faas = await cluster.connect();
    await untilServing(faas, 'predict/ping');
    models = predict.buildModels(loadOnnxProto<predict.OnnxProto>(mlDir));
    deployment = await predict.deployPredict(faas, { models });
  }, 90_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
  }, 30_000);

  it('the DAG and its functions + storage variant give the plain process\'s top 5 for the same image and weights', async () => {
    const expected = await plainPrediction(models, png);
    const viaDag = await faas.callDag(deployment.dag, { 'predict/preprocess': [png] }, { timeoutMs: 60_000 });
    expectSamePrediction(viaDag, expected);
    const viaStorage = await faas.callDag(deployment.storedDag, { 'predict/stored-preprocess': [png] }, { timeoutMs: 60_000 });
    expectSamePrediction(viaStorage, expected);
    // Another image gives another answer (the models do look at the pixels).
    const other = await faas.callDag(deployment.dag, { 'predict/preprocess': [predict.sampleImage(99)] }, { timeoutMs: 60_000 });
    expectSamePrediction(other, await plainPrediction(models, predict.sampleImage(99)));
    expect(other.top5.map((entry) => entry.index)).not.toEqual(viaDag.top5.map((entry) => entry.index));
  }, 120_000);

  it('loads each model once per executor: later calls load nothing', async () => {
    for (let i = 0; i < 4; i++) await faas.callDag(deployment.dag, { 'predict/preprocess': [png] }, { timeoutMs: 60_000 });
    const loads = async (): Promise<number[]> => Promise.all(cluster.executors.map(async (executor) => metricValue(await scrapeMetrics(executor), 'lfaas_executor_model_loads_total') ?? 0));
    const before = await loads();
    // At most one load of each of the three models on each executor (the stored variant ran too).
    for (const count of before) expect(count).toBeLessThanOrEqual(3);
    expect(before.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < 6; i++) await faas.callDag(deployment.dag, { 'predict/preprocess': [png] }, { timeoutMs: 60_000 });
    // A model is loaded at most once on each executor: one that has all three loads no more (an
    // executor that had not run a branch yet may load its model now, once).
    const after = await loads();
    for (const [i, count] of after.entries()) {
      expect(count).toBeLessThanOrEqual(3);
      expect(count).toBeGreaterThanOrEqual(before[i]!);
      if (before[i] === 3) expect(count).toBe(3);
    }
    const inferences = await Promise.all(cluster.executors.map(async (executor) => metricValue(await scrapeMetrics(executor), 'lfaas_executor_inferences_total') ?? 0));
    expect(inferences.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3 * 13);
  }, 120_000);

  it('a malformed tensor and a missing model are typed errors in the function', async () => {
    const probe = await faas.register(
      'predict/probe',
      code(`async (modelKey, feeds, ctx) => { try { await ctx.infer(modelKey, feeds); return 'ok'; } catch (error) { return error.code; } }`),
      { timeoutMs: 30_000 },
    );
    const image = predict.preprocessPng(png);
    const squeezenet = predict.MODEL_KEYS.squeezenet;
    expect(await faas.call(probe, [squeezenet, { data: image }])).toBe('ok');
    expect(await faas.call(probe, [squeezenet, { data: { ...image, data: image.data.subarray(1) } }])).toBe('EXEC_BAD_VALUE');
    expect(await faas.call(probe, [squeezenet, { data: { ...image, type: 'float16' } }])).toBe('EXEC_BAD_VALUE');
    expect(await faas.call(probe, [squeezenet, { data: { ...image, dims: [1, 3, 224, -224] } }])).toBe('EXEC_BAD_VALUE');
    expect(await faas.call(probe, [squeezenet, { wrong: image }])).toBe('EXEC_BAD_VALUE');
    expect(await faas.call(probe, ['predict/models/none', { data: image }])).toBe('KVS_KEY_NOT_FOUND');
    // Bytes that are no model: a typed error, and the executor serves on.
    await putModel(faas, 'predict/models/junk', new TextEncoder().encode('this is not an ONNX model'));
    expect(await faas.call(probe, ['predict/models/junk', { data: image }])).toBe('EXEC_BAD_VALUE');
    // A manifest whose chunk is missing: a typed error too.
    await faas.kvs.put('predict/models/torn', Lww.write(new HybridClock('test', () => Date.now()), { onnxChunks: 1, bytes: 4, sha256: '0'.repeat(64) }), { ack: 'replicated' });
    expect(await faas.call(probe, ['predict/models/torn', { data: image }])).toBe('EXEC_BAD_VALUE');
    expect(await faas.call(probe, [squeezenet, { data: image }])).toBe('ok');
  }, 120_000);
});
