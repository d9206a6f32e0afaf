/** The shapes and names the models and functions of the prediction example agree on. */
export const MODEL_NAMES = ['squeezenet', 'small-cnn', 'tiny'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];
/** The classes every model scores. */
export const CLASSES = 1000;
/** The input: one 224 x 224 RGB image, NCHW. */
export const INPUT_SHAPE = [1, 3, 224, 224] as const;
export const INPUT_NAME = 'data';
export const OUTPUT_NAME = 'probabilities';
