/**
 * `predict/stored-preprocess(png)` ("functions + storage" variant): preprocesses the image, writes
 * the tensor to the KVS and resolves with its key, which the classifiers read it back from.
 */
import type { FunctionContext } from '../../client/index.js';
import { preprocessPng } from './image.js';
import { runKey, writeTensor } from './pipeline.js';

export default async function storedPreprocess(png: Uint8Array, ctx: FunctionContext): Promise<string> {
  const key = runKey(ctx.callId, 'image');
  await writeTensor(ctx, key, preprocessPng(png));
  return key;
}
