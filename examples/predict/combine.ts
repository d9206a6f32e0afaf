/**
 * `predict/combine(squeezenet, smallCnn, tiny)`: averages the three models' probabilities and
 * resolves with the top 5 labels and their scores (and each model's best class).
 */
import type { FunctionContext } from '../../client/index.js';
import { combine, readLabels } from './pipeline.js';
import type { Prediction } from './pipeline.js';

export default async function combineModels(squeezenet: unknown, smallCnn: unknown, tiny: unknown, ctx: FunctionContext): Promise<Prediction> {
  return combine([squeezenet, smallCnn, tiny], await readLabels(ctx), 'average');
}
