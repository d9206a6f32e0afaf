/**
 * `predict/stored-combine(k1, k2, k3)` ("functions + storage" variant): reads the three models'
 * probabilities from the KVS, combines them, and deletes the run's intermediate keys.
 */
import type { FunctionContext } from '../../client/index.js';
import { CLASSES } from './constants.js';
import { combine, readLabels, readTensor, runKey } from './pipeline.js';
import type { Prediction } from './pipeline.js';

export default async function storedCombine(squeezenetKey: string, smallCnnKey: string, tinyKey: string, ctx: FunctionContext): Promise<Prediction> {
  const keys = [squeezenetKey, smallCnnKey, tinyKey];
  const [outputs, labels] = await Promise.all([Promise.all(keys.map((key) => readTensor(ctx, key, [1, CLASSES]))), readLabels(ctx)]);
  const prediction = combine(outputs, labels, 'average');
  // The run's tensors are not needed again: removed, so the KVS does not fill up with them.
  await Promise.all([...keys, runKey(ctx.callId, 'image')].map((key) => ctx.delete(key)));
  return prediction;
}
