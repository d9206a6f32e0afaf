/**
 * `predict/stored-small-cnn(imageKey)` ("functions + storage" variant): reads the image tensor from
 * the KVS, runs small-cnn, writes its probabilities to the KVS and resolves with their key.
 */
import { INPUT_SHAPE } from './constants.js';
import { classify, readTensor, runKey, writeTensor } from './pipeline.js';
import type { InferContext } from './pipeline.js';

export default async function storedClassifySmallCnn(imageKey: string, ctx: InferContext): Promise<string> {
  const probabilities = await classify(ctx, 'small-cnn', await readTensor(ctx, imageKey, INPUT_SHAPE));
  const key = runKey(ctx.callId, 'small-cnn');
  await writeTensor(ctx, key, probabilities);
  return key;
}
