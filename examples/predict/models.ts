/**
 * The three classifiers of the prediction pipeline, built here as ONNX graphs with `onnx-proto`
 * (no pretrained weights can be downloaded on these machines, so the weights are seeded: a
 * deterministic PRNG, He-normal scale, so the outputs are spread rather than degenerate; the same
 * seed gives the same bytes on every machine):
 *
 * - `squeezenet`: SqueezeNet 1.1 (Iandola et al. 2016; torchvision's `squeezenet1_1`), the real
 *   architecture: conv 3x3/2 64, max pool 3/2, fire modules (squeeze 1x1, expand 1x1 and 3x3,
 *   concatenated) 16/64, 16/64, pool, 32/128, 32/128, pool, 48/192, 48/192, 64/256, 64/256, then a
 *   1x1 conv to 1000 classes, ReLU, global average pool and softmax (dropout is a no-op at
 *   inference, so it is left out). 1.24 M parameters, ~4.9 MB.
 * - `small-cnn`: three conv 3x3 + ReLU + max pool stages (32, 64, 128 channels), global average
 *   pool, a 128 x 1000 dense layer, softmax. ~0.22 M parameters, ~0.9 MB.
 * - `tiny`: a 32x32 average pool (7 x 7 x 3 values), a 147 x 1000 dense layer, softmax. ~0.15 M
 *   parameters, ~0.6 MB.
 *
 * Each takes `data`, float32 [1, 3, 224, 224] (NCHW, ImageNet-normalised), and gives
 * `probabilities`, float32 [1, 1000]. A real model is dropped in the same way (README): any
 * `.onnx` file with one image input and a [1, 1000] output.
 *
 * onnx-proto is not a dependency of the project (it comes with the ML folder, `lfaas ml install`):
 * the caller passes its `onnx` namespace in.
 */
import { CLASSES, INPUT_NAME, INPUT_SHAPE, OUTPUT_NAME } from './constants.js';
import type { ModelName } from './constants.js';
import { seededGaussian } from '../random.js';

/** The parts of onnx-proto's `onnx` namespace used here (the package is absent at compile time). */
export interface OnnxProto {
  readonly ModelProto: { encode(message: object): { finish(): Uint8Array } };
}

/** ONNX enum values (onnx.proto3). */
const FLOAT = 1;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;


type Attribute = { name: string; type: number; i?: number; ints?: number[] };
type Node = { name: string; opType: string; input: string[]; output: string[]; attribute: Attribute[] };
type Initializer = { name: string; dataType: number; dims: number[]; rawData: Uint8Array };

const ints = (name: string, values: number[]): Attribute => ({ name, type: ATTRIBUTE_INTS, ints: values });
const int = (name: string, value: number): Attribute => ({ name, type: ATTRIBUTE_INT, i: value });

/** A graph under construction: nodes and seeded weights. */
class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: Initializer[] = [];
  parameters = 0;
  private readonly gaussian: () => number;

  constructor(seed: number) {
    this.gaussian = seededGaussian(seed);
  }

  private weight(name: string, dims: number[], std: number): string {
    const count = dims.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = this.gaussian() * std;
    // Little-endian, as ONNX's raw_data is (and as this machine is).
    this.initializers.push({ name, dataType: FLOAT, dims, rawData: new Uint8Array(values.buffer) });
    this.parameters += count;
    return name;
  }

  private node(opType: string, name: string, input: string[], attribute: Attribute[] = []): string {
    this.nodes.push({ name, opType, input, output: [name], attribute });
    return name;
  }

  /** Conv with He-normal weights (std sqrt(2 / fan in)) and small biases. */
  conv(input: string, name: string, inChannels: number, outChannels: number, kernel: number, stride = 1, pad = 0): string {
    const w = this.weight(`${name}.weight`, [outChannels, inChannels, kernel, kernel], Math.sqrt(2 / (inChannels * kernel * kernel)));
    const b = this.weight(`${name}.bias`, [outChannels], 0.01);
    return this.node('Conv', name, [input, w, b], [ints('kernel_shape', [kernel, kernel]), ints('strides', [stride, stride]), ints('pads', [pad, pad, pad, pad])]);
  }

  relu(input: string): string {
    return this.node('Relu', `${input}.relu`, [input]);
  }

  maxPool(input: string, name: string, kernel: number, stride: number): string {
    // ceil_mode as torchvision's SqueezeNet pools (55 -> 27 -> 13).
    return this.node('MaxPool', name, [input], [ints('kernel_shape', [kernel, kernel]), ints('strides', [stride, stride]), int('ceil_mode', 1)]);
  }

  averagePool(input: string, name: string, kernel: number): string {
    return this.node('AveragePool', name, [input], [ints('kernel_shape', [kernel, kernel]), ints('strides', [kernel, kernel])]);
  }

  globalAveragePool(input: string, name: string): string {
    return this.node('GlobalAveragePool', name, [input]);
  }

  flatten(input: string, name: string): string {
    return this.node('Flatten', name, [input], [int('axis', 1)]);
  }

  dense(input: string, name: string, inputs: number, outputs: number): string {
    const w = this.weight(`${name}.weight`, [inputs, outputs], Math.sqrt(2 / inputs));
    const b = this.weight(`${name}.bias`, [outputs], 0.01);
    return this.node('Gemm', name, [input, w, b]);
  }

  concat(inputs: string[], name: string): string {
    return this.node('Concat', name, inputs, [int('axis', 1)]);
  }

  softmax(input: string): string {
    this.nodes.push({ name: OUTPUT_NAME, opType: 'Softmax', input: [input], output: [OUTPUT_NAME], attribute: [int('axis', 1)] });
    return OUTPUT_NAME;
  }

  /** A fire module: squeeze 1x1, then expand 1x1 and 3x3 (padded) side by side, concatenated. */
  fire(input: string, name: string, inChannels: number, squeeze: number, expand: number): string {
    const s = this.relu(this.conv(input, `${name}.squeeze`, inChannels, squeeze, 1));
    const e1 = this.relu(this.conv(s, `${name}.expand1x1`, squeeze, expand, 1));
    const e3 = this.relu(this.conv(s, `${name}.expand3x3`, squeeze, expand, 3, 1, 1));
    return this.concat([e1, e3], `${name}.concat`);
  }

  encode(onnx: OnnxProto, graphName: string): Uint8Array {
    const tensorType = (dims: readonly number[]) => ({ tensorType: { elemType: FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } });
    return onnx.ModelProto.encode({
      irVersion: 8,
      producerName: 'lattice-faas examples/predict',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: [{ name: INPUT_NAME, type: tensorType(INPUT_SHAPE) }],
        output: [{ name: OUTPUT_NAME, type: tensorType([1, CLASSES]) }],
      },
    }).finish();
  }
}

/** SqueezeNet 1.1 with seeded weights. */
function squeezeNet(onnx: OnnxProto, seed: number): Uint8Array {
  const g = new GraphBuilder(seed);
  let x = g.relu(g.conv(INPUT_NAME, 'features.0', 3, 64, 3, 2));
  x = g.maxPool(x, 'features.2', 3, 2);
  x = g.fire(x, 'features.3', 64, 16, 64);
  x = g.fire(x, 'features.4', 128, 16, 64);
  x = g.maxPool(x, 'features.5', 3, 2);
  x = g.fire(x, 'features.6', 128, 32, 128);
  x = g.fire(x, 'features.7', 256, 32, 128);
  x = g.maxPool(x, 'features.8', 3, 2);
  x = g.fire(x, 'features.9', 256, 48, 192);
  x = g.fire(x, 'features.10', 384, 48, 192);
  x = g.fire(x, 'features.11', 384, 64, 256);
  x = g.fire(x, 'features.12', 512, 64, 256);
  x = g.relu(g.conv(x, 'classifier.1', 512, CLASSES, 1));
  x = g.flatten(g.globalAveragePool(x, 'classifier.pool'), 'classifier.flatten');
  g.softmax(x);
  return g.encode(onnx, 'squeezenet1_1');
}

/** A small CNN: three conv stages, global average pool, a dense layer. */
function smallCnn(onnx: OnnxProto, seed: number): Uint8Array {
  const g = new GraphBuilder(seed);
  let x = g.maxPool(g.relu(g.conv(INPUT_NAME, 'conv1', 3, 32, 3, 2, 1)), 'pool1', 2, 2);
  x = g.maxPool(g.relu(g.conv(x, 'conv2', 32, 64, 3, 1, 1)), 'pool2', 2, 2);
  x = g.maxPool(g.relu(g.conv(x, 'conv3', 64, 128, 3, 1, 1)), 'pool3', 2, 2);
  x = g.flatten(g.globalAveragePool(x, 'pool'), 'flatten');
  g.softmax(g.dense(x, 'dense', 128, CLASSES));
  return g.encode(onnx, 'small_cnn');
}

/** A tiny linear classifier over a 7 x 7 thumbnail. */
function tiny(onnx: OnnxProto, seed: number): Uint8Array {
  const g = new GraphBuilder(seed);
  const x = g.flatten(g.averagePool(INPUT_NAME, 'thumbnail', 32), 'flatten');
  g.softmax(g.dense(x, 'dense', 3 * 7 * 7, CLASSES));
  return g.encode(onnx, 'tiny');
}

const BUILDERS: Record<ModelName, (onnx: OnnxProto, seed: number) => Uint8Array> = { squeezenet: squeezeNet, 'small-cnn': smallCnn, tiny };

/** The default seeds: one per model, fixed, so every run builds the same bytes. */
export const MODEL_SEEDS: Record<ModelName, number> = { squeezenet: 11, 'small-cnn': 22, tiny: 33 };

/**
 * Builds the three models' `.onnx` bytes with seeded weights.
 *
 * @example
 * ```ts
 * const onnx = loadOnnxProto();            // cli's, from the ML folder
 * const models = buildModels(onnx);        // { squeezenet: Uint8Array, 'small-cnn': ..., tiny: ... }
 * ```
 */
export function buildModels(onnx: OnnxProto, seeds: Record<ModelName, number> = MODEL_SEEDS): Record<ModelName, Uint8Array> {
  return { squeezenet: BUILDERS.squeezenet(onnx, seeds.squeezenet), 'small-cnn': BUILDERS['small-cnn'](onnx, seeds['small-cnn']), tiny: BUILDERS.tiny(onnx, seeds.tiny) };
}
