/**
 * The inference process: a child of the executor (forked by inference.ts on first use) that holds
 * onnxruntime sessions and runs them. Apart so that the native ONNX parser and runtime cannot crash
 * or block the executor: a model that kills this process fails the requests in flight, and the
 * next request forks a new one.
 *
 * One message protocol over the IPC channel (advanced serialisation: bytes stay bytes):
 * - `{ op: 'load', id, session, model }`: parses `model` into session `session`;
 * - `{ op: 'run', id, session, feeds }`: runs it, replies `{ id, ok: true, outputs }`;
 * - `{ op: 'unload', session }`: releases it (no reply).
 * Every reply is `{ id, ok: true, ... }` or `{ id, ok: false, code, message }`.
 *
 * argv[2] is the ML folder that holds onnxruntime-node.
 */
import { ErrorCode, LfaasError, isLfaasError } from '../lattices/index.js';
import { checkTensorRecord } from '../protocol/portable.js';
import type { TensorValue } from '../protocol/portable.js';
import { refuseExternalData } from './onnx-model-check.js';
import type { OnnxProtoNamespace } from './onnx-model-check.js';
import { SESSION_OPTIONS, fromOrtTensor, loadOnnxRuntime, requireMlPackage, toOrtTensor } from './onnx-runtime.js';
import type { OnnxRuntime, OrtSession, OrtTensor } from './onnx-runtime.js';

/** A request of the executor. */
export type InferenceRequest =
  | { readonly op: 'load'; readonly id: number; readonly session: string; readonly model: Uint8Array }
  | { readonly op: 'run'; readonly id: number; readonly session: string; readonly feeds: Record<string, TensorValue> }
  | { readonly op: 'unload'; readonly session: string };

/** A reply of the inference process. */
export type InferenceReply =
  | { readonly id: number; readonly ok: true; readonly outputs?: Record<string, TensorValue>; readonly inputNames?: readonly string[] }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

function main(): void {
  const mlDir = process.argv[2];
  if (process.send === undefined || mlDir === undefined) {
    console.error('inference-process: run by the executor only (an IPC channel and the ML folder)');
    process.exit(2);
  }
  let ort: OnnxRuntime | undefined;
  let onnx: OnnxProtoNamespace | undefined;
  const sessions = new Map<string, OrtSession>();
  const reply = (message: InferenceReply): void => {
    process.send?.(message);
  };
  const fail = (id: number, error: unknown): void => {
    const code = isLfaasError(error) ? error.code : ErrorCode.EXEC_BAD_VALUE;
    const message = error instanceof Error ? error.message : String(error);
    reply({ id, ok: false, code, message: message.slice(0, 2000) });
  };

  const handle = async (request: InferenceRequest): Promise<void> => {
    if (request.op === 'unload') {
      const session = sessions.get(request.session);
      sessions.delete(request.session);
      await session?.release().catch(() => {});
      return;
    }
    try {
      ort ??= loadOnnxRuntime(mlDir);
      if (request.op === 'load') {
        if (!(request.model instanceof Uint8Array)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'the model is not bytes');
        // Before onnxruntime sees it: no tensor may keep its data in a file (onnx-model-check.ts).
        onnx ??= requireMlPackage<{ onnx: OnnxProtoNamespace }>(mlDir, 'onnx-proto').onnx;
        refuseExternalData(onnx, request.model);
        let session: OrtSession;
        try {
          session = await ort.InferenceSession.create(request.model, SESSION_OPTIONS);
        } catch (cause) {
          throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `not a model onnxruntime can load: ${cause instanceof Error ? cause.message : String(cause)}`);
        }
        await sessions.get(request.session)?.release().catch(() => {});
        sessions.set(request.session, session);
        reply({ id: request.id, ok: true, inputNames: [...session.inputNames] });
        return;
      }
      const session = sessions.get(request.session);
      if (session === undefined) throw new LfaasError(ErrorCode.INTERNAL, `session ${request.session} is not loaded`);
      const feeds = checkTensorRecord(request.feeds, 'feeds');
      const ortFeeds: Record<string, OrtTensor> = {};
      for (const [name, tensor] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(ort, tensor);
      let results: Record<string, OrtTensor>;
      try {
        results = await session.run(ortFeeds);
      } catch (cause) {
        throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the model refused its feeds: ${cause instanceof Error ? cause.message : String(cause)}`);
      }
      const outputs: Record<string, TensorValue> = {};
      for (const [name, tensor] of Object.entries(results)) outputs[name] = fromOrtTensor(tensor, `outputs.${name}`);
      reply({ id: request.id, ok: true, outputs });
    } catch (error) {
      fail(request.id, error);
    }
  };

  process.on('message', (message: InferenceRequest) => {
    void handle(message);
  });
  // The executor is gone: nothing left to serve.
  process.on('disconnect', () => process.exit(0));
}

main();
