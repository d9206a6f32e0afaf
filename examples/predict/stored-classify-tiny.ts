/**
 * `predict/stored-tiny(imageKey)` ("functions + storage" variant): reads the image tensor from
 * the KVS, runs tiny, writes its probabilities to the KVS and resolves with their key.
 */
import { INPUT_SHAPE } from './constants.js';
import { classify, readTensor, runKey, writeTensor } from './pipeline.js';
import type { InferContext } from './pipeline.js';

export default async function storedClassifyTiny(imageKey: string, ctx: InferContext): Promise<string> {
  const probabilities = await classify(ctx, 'tiny', await readTensor(ctx, imageKey, INPUT_SHAPE));
  const key = runKey(ctx.callId, 'tiny');
  await writeTensor(ctx, key, probabilities);
  return key;
}
