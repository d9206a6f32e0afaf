/**
 * The inference process's check of a model before onnxruntime parses it: an ONNX tensor may keep
 * its data in an external file (`data_location: EXTERNAL`, `external_data: { location, offset,
 * length }`), and onnxruntime reads that file, relative to the process's working directory, even
 * for a model given as bytes (`../` included; checked here: a model whose initializer named
 * `hostname` read `/etc/hostname` from `/etc`). A model is an owner's data, so that would read the
 * executor's files (its keys folder, another owner's model) into a tensor and hand it back. Every
 * tensor the model holds is checked (initializers, sparse ones, attribute tensors, subgraphs and
 * functions, at any depth): one with external data refuses the model.
 *
 * `onnx` is onnx-proto's namespace (installed with onnxruntime-node in the ML folder; not a project
 * dependency, so typed here by the few fields read).
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';

/** onnx-proto's `TensorProto.DataLocation.EXTERNAL`. */
const EXTERNAL = 1;
/** Nested graphs and functions followed at most this deep; tensors checked at most this many. */
const DEPTH_MAX = 64;
const TENSORS_MAX = 1_000_000;

interface TensorLike {
  readonly name?: string;
  readonly dataLocation?: number;
  readonly externalData?: readonly unknown[];
}
interface SparseLike {
  readonly values?: TensorLike | null;
  readonly indices?: TensorLike | null;
}
interface AttributeLike {
  readonly t?: TensorLike | null;
  readonly tensors?: readonly TensorLike[];
  readonly g?: GraphLike | null;
  readonly graphs?: readonly GraphLike[];
  readonly sparseTensor?: SparseLike | null;
  readonly sparseTensors?: readonly SparseLike[];
}
interface NodeLike {
  readonly attribute?: readonly AttributeLike[];
}
interface GraphLike {
  readonly initializer?: readonly TensorLike[];
  readonly sparseInitializer?: readonly SparseLike[];
  readonly node?: readonly NodeLike[];
}
interface ModelLike {
  readonly graph?: GraphLike | null;
  readonly functions?: readonly { readonly node?: readonly NodeLike[] }[];
}

/** What the check needs of onnx-proto. */
export interface OnnxProtoNamespace {
  readonly ModelProto: { decode(bytes: Uint8Array): unknown };
}

/** Throws EXEC_BAD_VALUE when `model` does not decode as an ONNX model or a tensor of it keeps its data in a file. */
export function refuseExternalData(onnx: OnnxProtoNamespace, model: Uint8Array): void {
  let decoded: ModelLike;
  try {
    decoded = onnx.ModelProto.decode(model) as ModelLike;
  } catch (cause) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `not an ONNX model: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  let tensors = 0;
  const tensor = (value: TensorLike | null | undefined): void => {
    if (value === undefined || value === null) return;
    if (++tensors > TENSORS_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the model holds more than ${TENSORS_MAX} tensors`);
    if (value.dataLocation === EXTERNAL || (value.externalData?.length ?? 0) > 0) {
      throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `tensor ${JSON.stringify(String(value.name ?? '').slice(0, 200))} keeps its data in an external file: models must hold all their data (external data would be read from the executor's disk)`);
    }
  };
  const sparse = (value: SparseLike | null | undefined): void => {
    tensor(value?.values);
    tensor(value?.indices);
  };
  const nodes = (list: readonly NodeLike[] | undefined, depth: number): void => {
    for (const node of list ?? []) {
      for (const attribute of node.attribute ?? []) {
        tensor(attribute.t);
        for (const each of attribute.tensors ?? []) tensor(each);
        sparse(attribute.sparseTensor);
        for (const each of attribute.sparseTensors ?? []) sparse(each);
        graph(attribute.g, depth + 1);
        for (const each of attribute.graphs ?? []) graph(each, depth + 1);
      }
    }
  };
  const graph = (value: GraphLike | null | undefined, depth: number): void => {
    if (value === undefined || value === null) return;
    if (depth > DEPTH_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the model nests graphs deeper than ${DEPTH_MAX}`);
    for (const each of value.initializer ?? []) tensor(each);
    for (const each of value.sparseInitializer ?? []) sparse(each);
    nodes(value.node, depth);
  };
  graph(decoded.graph, 0);
  for (const fn of decoded.functions ?? []) nodes(fn.node, 1);
}
