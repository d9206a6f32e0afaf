/**
 * The inference service against a real inference process and onnxruntime (skipped, saying how to
 * install it, when the ML folder is not there): sessions cached per model bytes, typed errors
 * both ways, a crashed or hung process replaced.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { float32OfTensor, tensorFromFloat32 } from '../protocol/index.js';
import type { TensorValue } from '../protocol/index.js';
import { InferenceService } from './inference.js';
import { detectIsolation, isolationRank } from './isolation.js';
import type { IsolationLevel } from './isolation.js';
import { mlPackageInstalled, requireMlPackage } from './onnx-runtime.js';

const mlDir = resolve(process.env['LFAAS_ML_DIR'] ?? join(import.meta.dirname, '..', '.lfaas', 'ml'));
const installed = mlPackageInstalled(mlDir, 'onnxruntime-node') && mlPackageInstalled(mlDir, 'onnx-proto');
const built = existsSync(join(import.meta.dirname, '..', 'dist', 'executor', 'inference-process.js'));
if (!installed) console.warn(`executor/inference.test.ts skipped: the ML packages are not in ${mlDir}; install them with \`npx lfaas ml install\` (after npm run build)`);

type Onnx = { ModelProto: { encode(message: object): { finish(): Uint8Array } } };
const FLOAT = 1;

/** A model of one node `op` over input X (and initializer W when given). */
function model(op: string, xDims: number[], yDims: number[], extra: { nodes?: object[]; initializer?: object[]; output?: string } = {}): Uint8Array {
  const onnx = requireMlPackage<{ onnx: Onnx }>(mlDir, 'onnx-proto').onnx;
  const info = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } } });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'g',
      node: extra.nodes ?? [{ opType: op, input: ['X'], output: ['Y'], name: 'n' }],
      initializer: extra.initializer ?? [],
      input: [info('X', xDims)],
      output: [info(extra.output ?? 'Y', yDims)],
    },
  }).finish();
}

/** X [n, n] times W [n, n], `times` times over: slow on purpose (a hung model, for the tests). */
function slowModel(n = 1024, times = 64): Uint8Array {
  const w = new Float32Array(n * n).fill(1 / n);
  const nodes = Array.from({ length: times }, (_, i) => ({ opType: 'MatMul', input: [i === 0 ? 'X' : `h${i - 1}`, 'W'], output: [i === times - 1 ? 'Y' : `h${i}`], name: `m${i}` }));
  return model('MatMul', [n, n], [n, n], { nodes, initializer: [{ name: 'W', dataType: FLOAT, dims: [n, n], rawData: new Uint8Array(w.buffer) }] });
}

const services: InferenceService[] = [];
function service(models: Map<string, Uint8Array>, options: { sessionsMax?: number; timeoutMs?: number; isolation?: IsolationLevel } = {}): InferenceService {
  const created = new InferenceService({ mlDir, readModel: async (key) => models.get(key), ...options });
  services.push(created);
  return created;
}
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
});

const x = (values: number[]): TensorValue => tensorFromFloat32([1, values.length], new Float32Array(values));

describe.skipIf(!installed || !built)('InferenceService', () => {
  it('runs a model, loading it once per bytes; a replaced model loads again', async () => {
    const relu = model('Relu', [1, 4], [1, 4]);
    const models = new Map([['m/relu', relu]]);
    const inference = service(models);
    for (let i = 0; i < 3; i++) {
      const out = await inference.infer('m/relu', { X: x([-1, 2, -3, 4]) });
      expect(Array.from(float32OfTensor(out['Y']!))).toEqual([0, 2, 0, 4]);
    }
    expect(inference.counters).toMatchObject({ modelLoads: 1, inferences: 3, failures: 0, processStarts: 1 });
    // Equal bytes in another object: the same session (hashed, not loaded again).
    models.set('m/relu', relu.slice());
    await inference.infer('m/relu', { X: x([1, 1, 1, 1]) });
    expect(inference.counters.modelLoads).toBe(1);
    models.set('m/relu', model('Neg', [1, 4], [1, 4]));
    const negated = await inference.infer('m/relu', { X: x([1, 2, 3, 4]) });
    expect(Array.from(float32OfTensor(negated['Y']!))).toEqual([-1, -2, -3, -4]);
    expect(inference.counters.modelLoads).toBe(2);
  });

  it('gives typed errors: a missing model, bytes that are no model, malformed and refused feeds; and serves on', async () => {
    const models = new Map([['m/relu', model('Relu', [1, 2], [1, 2])], ['m/junk', new TextEncoder().encode('this is not an onnx model')]]);
    const inference = service(models);
    await expect(inference.infer('m/none', { X: x([1, 2]) })).rejects.toMatchObject({ code: ErrorCode.KVS_KEY_NOT_FOUND });
    await expect(inference.infer('m/junk', { X: x([1, 2]) })).rejects.toMatchObject({ code: ErrorCode.EXEC_BAD_VALUE });
    await expect(inference.infer('m/relu', { X: { type: 'float32', dims: [1, 2], data: new Uint8Array(7) } })).rejects.toMatchObject({ code: ErrorCode.EXEC_BAD_VALUE });
    await expect(inference.infer('m/relu', { X: { type: 'float64', dims: [1], data: new Uint8Array(8) } as unknown as TensorValue })).rejects.toMatchObject({ code: ErrorCode.EXEC_BAD_VALUE });
    await expect(inference.infer('m/relu', { Nope: x([1, 2]) })).rejects.toMatchObject({ code: ErrorCode.EXEC_BAD_VALUE });
    await expect(inference.infer('m/relu', { X: x([1, 2, 3]) })).rejects.toMatchObject({ code: ErrorCode.EXEC_BAD_VALUE });
    await expect(inference.infer('', { X: x([1, 2]) })).rejects.toMatchObject({ code: ErrorCode.KVS_BAD_KEY });
    expect(Array.from(float32OfTensor((await inference.infer('m/relu', { X: x([-5, 5]) }))['Y']!))).toEqual([0, 5]);
    expect(inference.counters.processStarts).toBe(1);
    expect(inference.counters.failures).toBe(7);
  });

  it('refuses a model whose tensors keep their data in external files (onnxruntime would read the executor\'s disk), at any depth', async () => {
    // An initializer "stored" in /etc/hostname (by a relative path that climbs out of any working
    // directory), output as is: loaded, it would hand the file's bytes back.
    const length = String(Buffer.byteLength('x'));
    const secret = { name: 'secret', dataType: 2, dims: [1], dataLocation: 1, externalData: [{ key: 'location', value: '../../../../../../../../etc/hostname' }, { key: 'length', value: length }] };
    const leak = model('Identity', [1], [1], { nodes: [{ opType: 'Identity', input: ['secret'], output: ['Y'], name: 'n' }], initializer: [secret] });
    // The same tensor in a subgraph: the then-branch of an If node.
    const branch = { name: 'b', node: [{ opType: 'Identity', input: ['secret'], output: ['Z'], name: 'inner' }], initializer: [secret], output: [{ name: 'Z', type: { tensorType: { elemType: 2, shape: { dim: [{ dimValue: 1 }] } } } }] };
    const nested = model('If', [1], [1], { nodes: [{ opType: 'If', input: ['X'], output: ['Y'], name: 'if', attribute: [{ name: 'then_branch', type: 5, g: branch }, { name: 'else_branch', type: 5, g: branch }] }] });
    const inference = service(new Map([['m/leak', leak], ['m/nested', nested], ['m/good', model('Relu', [1, 2], [1, 2])]]));
    for (const key of ['m/leak', 'm/nested']) {
      await expect(inference.infer(key, { X: x([1]) })).rejects.toMatchObject({ code: ErrorCode.EXEC_BAD_VALUE, message: expect.stringContaining('external file') });
    }
    expect(inference.counters.modelLoads).toBe(0);
    // The process serves on.
    expect(float32OfTensor((await inference.infer('m/good', { X: x([-1, 2]) }))['Y']!)).toEqual(new Float32Array([0, 2]));
  });

  it('runs behind the runtimes\' wall at process and (where the machine allows) bwrap: as the unprivileged user', async () => {
    const strongest = (await detectIsolation()).level;
    const levels = (['process', 'bwrap'] as const).filter((level) => isolationRank(level) <= isolationRank(strongest));
    expect(levels).toContain('process');
    for (const isolation of levels) {
      const inference = service(new Map([['m/relu', model('Relu', [1, 2], [1, 2])]]), { isolation });
      expect(float32OfTensor((await inference.infer('m/relu', { X: x([-3, 4]) }))['Y']!), isolation).toEqual(new Float32Array([0, 4]));
      if (isolation === 'process' && process.getuid?.() === 0) {
        // The child itself (at bwrap it is bubblewrap's, and the user is mapped in its namespace).
        const status = readFileSync(`/proc/${inference.processId}/status`, 'utf8');
        expect(/^Uid:\s+(\d+)/m.exec(status)?.[1], 'the inference process\'s user').toBe('65534');
      }
    }
  });

  it('fails the requests in flight when the process dies, and the next request starts a new one', async () => {
    const models = new Map([['m/slow', slowModel()], ['m/relu', model('Relu', [1, 2], [1, 2])]]);
    const inference = service(models);
    await inference.infer('m/relu', { X: x([1, 2]) });
    const pid = inference.processId!;
    const slow = inference.infer('m/slow', { X: tensorFromFloat32([1024, 1024], new Float32Array(1024 * 1024).fill(1)) });
    // Until the slow model is loaded and its run sent (bounded; a loaded machine takes longer).
    for (let waited = 0; inference.counters.modelLoads < 2 && waited < 20_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 50));
    process.kill(pid, 'SIGKILL');
    await expect(slow).rejects.toMatchObject({ code: ErrorCode.INTERNAL });
    expect(Array.from(float32OfTensor((await inference.infer('m/relu', { X: x([-1, 1]) }))['Y']!))).toEqual([0, 1]);
    expect(inference.processId).not.toBe(pid);
    expect(inference.counters).toMatchObject({ processStarts: 2, processCrashes: 1, modelLoads: 3 });
  });

  it('times a hung inference out, replacing the process', async () => {
    const models = new Map([['m/slow', slowModel()], ['m/relu', model('Relu', [1, 2], [1, 2])]]);
    const inference = service(models);
    await inference.infer('m/relu', { X: x([1, 2]) });
    const started = performance.now();
    await expect(inference.infer('m/slow', { X: tensorFromFloat32([1024, 1024], new Float32Array(1024 * 1024)) }, 150)).rejects.toMatchObject({ code: ErrorCode.EXEC_TIMEOUT });
    expect(performance.now() - started).toBeLessThan(1500);
    await inference.infer('m/relu', { X: x([1, 2]) });
    expect(inference.counters.processStarts).toBe(2);
  });

  it('takes feeds whose bytes are not aligned to their element size', async () => {
    const inference = service(new Map([['m/relu', model('Relu', [1, 2], [1, 2])]]));
    const backing = new Uint8Array(9);
    new DataView(backing.buffer).setFloat32(1, -2, true);
    new DataView(backing.buffer).setFloat32(5, 3, true);
    const out = await inference.infer('m/relu', { X: { type: 'float32', dims: [1, 2], data: backing.subarray(1) } });
    expect(Array.from(float32OfTensor(out['Y']!))).toEqual([0, 3]);
  });

  it('holds at most sessionsMax sessions', async () => {
    const models = new Map([['a', model('Relu', [1, 2], [1, 2])], ['b', model('Neg', [1, 2], [1, 2])]]);
    const inference = service(models, { sessionsMax: 1 });
    for (const key of ['a', 'a', 'b', 'b', 'a']) await inference.infer(key, { X: x([1, 2]) });
    expect(inference.counters.modelLoads).toBe(3);
  });

  it('refuses requests after close', async () => {
    const inference = service(new Map());
    await inference.close();
    await expect(inference.infer('a', { X: x([1]) })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_CLOSED });
  });
});
