/** `predict/squeezenet(image)`: the squeezenet model's class probabilities for the image tensor (`ctx.infer`). */
import type { TensorValue } from '../../client/index.js';
import { classify } from './pipeline.js';
import type { InferContext } from './pipeline.js';

export default async function classifySqueezenet(image: TensorValue, ctx: InferContext): Promise<TensorValue> {
  return classify(ctx, 'squeezenet', image);
}
