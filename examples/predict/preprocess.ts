/**
 * `predict/preprocess(png)`: decodes a PNG, resizes it to 224 x 224 (bilinear) and normalises it
 * (ImageNet mean and std) into the models' input: a float32 [1, 3, 224, 224] tensor.
 */
import type { TensorValue } from '../../client/index.js';
import { preprocessPng } from './image.js';

export default function preprocess(png: Uint8Array): TensorValue {
  return preprocessPng(png);
}
