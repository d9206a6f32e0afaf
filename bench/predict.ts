/**
 * `predict`: prediction serving (examples/predict/), the pipeline of the Cloudburst paper and the
 * Fluent talk: preprocess a PNG (decode, resize to 224 x 224, normalise), three classifiers in
 * parallel (SqueezeNet 1.1, a small CNN, a tiny linear model: seeded weights, built with onnx-proto),
 * then combine (average, top 5). Four systems, in the same run, at 1, 4 and 8 requests in flight:
 *
 * - (a) plain: one Node process (this one) calling onnxruntime directly: preprocess, the three
 *   sessions run at once, combine. The floor: no platform.
 * - (b) ours: the DAG `predict/pipeline` on a local cluster (bench/faas-cluster.ts: routing node, one storage
 *   node, one scheduler, two executors, so that branches can run on different executors), models
 *   run by `ctx.infer` in each executor's inference process.
 * - (c) ours, "functions + storage": the DAG `predict/stored-pipeline`, every intermediate tensor written to
 *   the KVS by one stage and read back by the next (the pattern of FaaS pipelines over object
 *   storage).
 * - (d) Restate (bench/restate-peer.ts, installed on demand): a service whose handler preprocesses,
 *   calls three model handlers (separate service calls, in parallel) and combines; onnxruntime in
 *   the Restate deployment's Node process.
 *
 * The ML packages (onnxruntime-node, ~290 MB) are installed into the ML folder on first use (said
 * on stderr). Published figures of other systems are quoted beside, as constants with their source.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LatticeFaas } from '../client/index.js';
import { ensureMlInstalled, loadOnnxProto } from '../cli/index.js';
import { SESSION_OPTIONS, fromOrtTensor, loadOnnxRuntime, toOrtTensor } from '../executor/index.js';
import type { OrtSession } from '../executor/index.js';
import { predict } from '../examples/index.js';
import { startFaasBenchCluster } from './faas-cluster.js';
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { withProcessCpu } from './harness/process-cpu.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { startRestate } from './restate-peer.js';
import type { RestatePeer } from './restate-peer.js';

const LEVELS = [1, 4, 8] as const;
const PLAIN = '(a) plain Node process + onnxruntime (floor)';
const OURS = '(b) lattice-faas DAG predict';
const STORED = '(c) lattice-faas DAG, tensors through the KVS';
const RESTATE = '(d) restate service (3 model calls)';

/** The targets, as the issue wrote them. */
const TARGET_P50_OVER_PLAIN_AT_1 = 1.2;
const TARGET_STORED_OVER_OURS = 2;
const TARGET_RESTATE_OVER_OURS = 5;

/**
 * Published figures of other systems for this pipeline, quoted as their sources give them. The
 * Cloudburst paper (Sreekanti et al., "Cloudburst: Stateful Functions-as-a-Service", VLDB 2020,
 * section 6.2.1, the prediction serving figure) and the Fluent talk compare this pipeline against
 * AWS SageMaker; their numbers could not be read on this machine (no network), so they are left
 * as NOT QUOTED rather than guessed: fill `p50Ms`/`p99Ms` in from the paper's figure.
 */
const PUBLISHED: ReadonlyArray<{ readonly system: string; readonly p50Ms: number | undefined; readonly p99Ms: number | undefined; readonly source: string }> = [
  { system: 'Cloudburst (Python, published)', p50Ms: undefined, p99Ms: undefined, source: 'Sreekanti et al., Cloudburst: Stateful Functions-as-a-Service, PVLDB 13(11) 2020, sec. 6.2.1 (prediction serving figure); arXiv:2001.04592' },
  { system: 'AWS SageMaker (published, same paper)', p50Ms: undefined, p99Ms: undefined, source: 'same figure: the pipeline as a SageMaker endpoint' },
];

interface PredictSystem {
  readonly system: string;
  readonly pids: readonly number[];
  /** One request: the PNG in, the top 5 out. */
  request(): Promise<predict.Prediction>;
  readonly failures: string[];
}

/** The Restate deployment's predict services (ES module code; `restate` is in scope). */
function restateSource(): string {
  return `
const { createRequire } = await import('node:module');
const { readFileSync } = await import('node:fs');
const image = await import(process.env.LFAAS_PREDICT_DIST + '/image.js');
const pipeline = await import(process.env.LFAAS_PREDICT_DIST + '/pipeline.js');
process.env.ORT_DISABLE_TELEMETRY = '1';
const ort = createRequire(process.env.LFAAS_ML_DIR + '/package.json')('onnxruntime-node');
const sessions = new Map();
const session = (name) => {
  if (!sessions.has(name)) sessions.set(name, ort.InferenceSession.create(readFileSync(process.env.LFAAS_PREDICT_MODELS + '/' + name + '.onnx'), ${JSON.stringify(SESSION_OPTIONS)}));
  return sessions.get(name);
};
const classify = async (name, imageBase64) => {
  const bytes = Buffer.from(imageBase64, 'base64');
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out = await (await session(name)).run({ ${JSON.stringify(predict.INPUT_NAME)}: new ort.Tensor('float32', data, [1, 3, 224, 224]) });
  const p = out[${JSON.stringify(predict.OUTPUT_NAME)}].data;
  return Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('base64');
};
const predictModels = restate.service({
  name: 'LatticePredictModels',
  handlers: {
    squeezenet: async (_ctx, imageBase64) => classify('squeezenet', imageBase64),
    smallCnn: async (_ctx, imageBase64) => classify('small-cnn', imageBase64),
    tiny: async (_ctx, imageBase64) => classify('tiny', imageBase64),
  },
});
const labels = pipeline.generatedLabels();
const predictPipeline = restate.service({
  name: 'LatticePredict',
  handlers: {
    predict: async (ctx, request) => {
      const tensor = image.preprocessPng(new Uint8Array(Buffer.from(request.png, 'base64')));
      const imageBase64 = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength).toString('base64');
      const models = ctx.serviceClient(predictModels);
      const all = restate.RestatePromise?.all ?? restate.CombineablePromise.all;
      const outputs = await all([models.squeezenet(imageBase64), models.smallCnn(imageBase64), models.tiny(imageBase64)]);
      return pipeline.combine(outputs.map((b64) => ({ type: 'float32', dims: [1, 1000], data: new Uint8Array(Buffer.from(b64, 'base64')) })), labels, 'average');
    },
  },
});
`;
}

export const predictBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const levelMs = options.quick ? 3000 : 10_000;
  const warmUpMs = options.quick ? 1000 : 3000;
  const notes: string[] = [];
  const log = (line: string): void => {
    if (!options.json) console.error(line);
  };
  const mlDir = await ensureMlInstalled({ log: (line) => console.error(`predict: ${line}`) });
  const models = predict.buildModels(loadOnnxProto<predict.OnnxProto>(mlDir));
  const png = predict.sampleImage();
  notes.push(
    `pipeline: preprocess (decode a ${png.byteLength}-byte 320x240 PNG with fflate, bilinear resize to 224x224, ImageNet normalisation, float32 NCHW), then SqueezeNet 1.1 (${(models.squeezenet.byteLength / 1e6).toFixed(2)} MB), a small CNN (${(models['small-cnn'].byteLength / 1e6).toFixed(2)} MB) and a tiny linear model (${(models.tiny.byteLength / 1e6).toFixed(2)} MB) in parallel (seeded weights, examples/predict/models.ts), then combine (average of the probabilities, top 5); every system answers the same top 5 (checked on the first request)`,
    `setup: one client process (this one) keeps N requests in flight (N = ${LEVELS.join(', ')}) for ${levelMs / 1000} s per level, after ${warmUpMs / 1000} s of warm-up at that level; levels in order, the systems one after another within a level; everything shares the 2 cores; onnxruntime ${SESSION_OPTIONS.graphOptimizationLevel} optimisations, CPU, default threads, in every system`,
    `(a) plain: preprocess, the three sessions' run() at once, combine, in this process. (b) ours: DAG predict/preprocess -> predict/squeezenet | predict/small-cnn | predict/tiny -> predict/combine (one owner, predict: one pool of sandbox processes), 2 executors (--workers 4), models loaded from the KVS (chunked) into each executor's inference process on first use. (c) the same DAG, each stage writing its tensor's bytes to the KVS (ctx.put) and passing the key, the next reading it (ctx.get), the last deleting them. (d) Restate: LatticePredict/predict (preprocess in the handler, three LatticePredictModels calls at once through Restate, combine), the PNG and the tensors as base64 JSON (Restate's default serde), onnxruntime in the deployment's process`,
  );

  // (a) the plain process.
  const ort = loadOnnxRuntime(mlDir);
  const sessions = {} as Record<predict.ModelName, OrtSession>;
  for (const name of predict.MODEL_NAMES) sessions[name] = await ort.InferenceSession.create(models[name], SESSION_OPTIONS);
  const labels = predict.generatedLabels();
  const plainRequest = async (): Promise<predict.Prediction> => {
    const image = predict.preprocessPng(png);
    const outputs = await Promise.all(predict.MODEL_NAMES.map((name) => sessions[name].run({ [predict.INPUT_NAME]: toOrtTensor(ort, image) })));
    return predict.combine(outputs.map((output, i) => fromOrtTensor(output[predict.OUTPUT_NAME]!, predict.MODEL_NAMES[i]!)), labels, 'average');
  };
  const expected = await plainRequest();

  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
  const modelsDir = join(options.resultsDir, '..', 'peers', 'predict-models');
  mkdirSync(modelsDir, { recursive: true });
  for (const name of predict.MODEL_NAMES) writeFileSync(join(modelsDir, `${name}.onnx`), models[name]);
  const predictDist = pathToFileURL(join(import.meta.dirname, '..', 'examples', 'predict')).href;
  const restate: RestatePeer | undefined = await startRestate((line) => notes.push(line), {
    source: restateSource(),
    services: ['predictModels', 'predictPipeline'],
    env: { LFAAS_ML_DIR: mlDir, LFAAS_PREDICT_MODELS: modelsDir, LFAAS_PREDICT_DIST: predictDist },
  }).catch((error: unknown) => {
    notes.push(`restate: could not start: ${(error as Error).message}`);
    return undefined;
  });
  if (restate === undefined) notes.push('RESTATE NOT AVAILABLE: its rows are missing and its target is not measured');
  else notes.push(`restate version: ${restate.version}`);

  const rows: Row[] = [];
  try {
    const faas: LatticeFaas = cluster.faas;
    const deployment = await predict.deployPredict(faas, { models });
    const ourPids = cluster.processes.map((started) => started.child.pid).filter((pid): pid is number => typeof pid === 'number');
    notes.push(`ours: executors at isolation \`${cluster.isolation}\``);
    const systems: PredictSystem[] = [
      { system: PLAIN, pids: [process.pid], failures: [], request: plainRequest },
      { system: OURS, pids: ourPids, failures: [], request: () => faas.callDag(deployment.dag, { 'predict/preprocess': [png] }, { timeoutMs: 60_000 }) },
      { system: STORED, pids: ourPids, failures: [], request: () => faas.callDag(deployment.storedDag, { 'predict/stored-preprocess': [png] }, { timeoutMs: 60_000 }) },
    ];
    if (restate !== undefined) {
      const body = JSON.stringify({ png: Buffer.from(png).toString('base64') });
      systems.push({ system: RESTATE, pids: restate.pids, failures: [], request: async () => JSON.parse(await restate.post('/LatticePredict/predict', body, 60_000)) as predict.Prediction });
    }
    // Every system answers the plain process's top 5 (the first call also loads the models).
    for (const item of systems) {
      try {
        const first = await item.request();
        const same = first.top5.every((entry, i) => entry.index === expected.top5[i]?.index && Math.abs(entry.score - expected.top5[i]!.score) < 1e-4);
        if (!same) item.failures.push(`WRONG top 5: ${JSON.stringify(first.top5.map((e) => e.index))}, expected ${JSON.stringify(expected.top5.map((e) => e.index))}`);
      } catch (error) {
        item.failures.push(`first request: ${String((error as { code?: string }).code ?? 'error')}: ${String((error as Error).message).slice(0, 300)}`);
      }
    }

    for (const inFlight of LEVELS) {
      for (const item of systems) {
        let failed = 0;
        const operation = (): Promise<unknown> =>
          item.request().catch((error: unknown) => {
            failed++;
            if (item.failures.length < 3) item.failures.push(`${String((error as { code?: string }).code ?? 'error')}: ${String((error as Error).message).slice(0, 300)}`);
          });
        await closedLoop(operation, { inFlight, durationMs: warmUpMs, maxOperations: 100_000 });
        failed = 0;
        const { result, cores } = await withProcessCpu(item.pids, () => closedLoop(operation, { inFlight, durationMs: levelMs, maxOperations: 100_000 }));
        const summary = summarise(result.latenciesMs);
        rows.push({
          system: item.system,
          inFlight,
          p50Ms: summary.p50Ms,
          p99Ms: summary.p99Ms,
          perSecond: ((result.operations - failed) * 1000) / result.elapsedMs,
          requests: result.operations,
          failed,
          serverCores: item.system === PLAIN ? result.cpuCores : cores,
          clientCores: result.cpuCores,
        });
        log(`predict: ${item.system} at ${inFlight} in flight: p50 ${summary.p50Ms.toFixed(1)} ms, ${(((result.operations - failed) * 1000) / result.elapsedMs).toFixed(1)}/s, failed ${failed}`);
      }
    }
    for (const item of systems) if (item.failures.length > 0) notes.push(`FAILURES: ${item.system}: ${item.failures.join(' | ')}`);
  } finally {
    await restate?.stop().catch((error: unknown) => notes.push(`restate: stop failed: ${(error as Error).message}`));
    await cluster.stop();
  }

  const row = (system: string, inFlight: number): Row | undefined => rows.find((candidate) => candidate['system'] === system && candidate['inFlight'] === inFlight);
  const ratios: Record<string, number> = {};
  for (const inFlight of LEVELS) {
    const ours = row(OURS, inFlight);
    if (ours === undefined) continue;
    for (const [tag, system] of [['plain', PLAIN], ['stored', STORED], ['restate', RESTATE]] as const) {
      const other = row(system, inFlight);
      if (other === undefined) continue;
      ratios[`p50_ours_over_${tag}_at_${inFlight}`] = Number(ours['p50Ms']) / Number(other['p50Ms']);
      ratios[`throughput_ours_over_${tag}_at_${inFlight}`] = Number(ours['perSecond']) / Number(other['perSecond']);
    }
  }
  const targets: Target[] = [];
  const overPlain = ratios['p50_ours_over_plain_at_1'];
  if (overPlain !== undefined) targets.push({ name: 'our p50 over the plain process\'s, 1 in flight (x)', target: `<= ${TARGET_P50_OVER_PLAIN_AT_1}`, value: overPlain, met: overPlain <= TARGET_P50_OVER_PLAIN_AT_1 });
  const overStored = ratios['p50_ours_over_stored_at_1'];
  if (overStored !== undefined) targets.push({ name: 'functions + storage p50 over ours, 1 in flight (x faster)', target: `>= ${TARGET_STORED_OVER_OURS}`, value: 1 / overStored, met: 1 / overStored >= TARGET_STORED_OVER_OURS });
  const overRestate = ratios['p50_ours_over_restate_at_1'];
  if (overRestate !== undefined) targets.push({ name: 'Restate p50 over ours, 1 in flight (x faster)', target: `>= ${TARGET_RESTATE_OVER_OURS}`, value: 1 / overRestate, met: 1 / overRestate >= TARGET_RESTATE_OVER_OURS });
  else notes.push(`target ">= ${TARGET_RESTATE_OVER_OURS}x faster than Restate": NOT MEASURED (no Restate row)`);
  for (const figure of PUBLISHED) notes.push(`published: ${figure.system}: ${figure.p50Ms === undefined ? 'NOT QUOTED (figures not readable offline; fill in from the source)' : `p50 ${figure.p50Ms} ms, p99 ${figure.p99Ms} ms`}; source: ${figure.source}`);
  notes.push(machineLoad.summary());

  await publish('predict', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: {
      rows,
      spec: {
        title: 'predict: p50 latency by requests in flight (log scale)',
        width: 460,
        height: 280,
        mark: { type: 'line', point: { filled: true, size: 80 } },
        encoding: {
          x: { field: 'inFlight', type: 'quantitative', title: 'requests in flight', axis: { values: [...LEVELS] } },
          y: { field: 'p50Ms', type: 'quantitative', scale: { type: 'log' }, title: 'p50 latency (ms)' },
          color: { field: 'system', type: 'nominal', legend: { orient: 'bottom', direction: 'vertical', labelLimit: 420 } },
        },
      },
    },
  });
};
