/**
 * The image half of the pipeline, pure JavaScript (it runs inside the sandbox, where nothing
 * native loads): PNG decoding (zlib by `fflate`; 8-bit grey, grey + alpha, RGB and RGBA, not
 * interlaced), a bilinear resize to 224 x 224, and ImageNet normalisation into the model's input,
 * float32 NCHW as little-endian bytes. And a PNG encoder, for the sample image.
 *
 * Bounds: at most {@link IMAGE_SIDE_MAX} pixels a side; the inflated size is known from the header
 * before inflating, so a small file cannot expand into a large allocation.
 */
import { unzlibSync, zlibSync } from 'fflate';
import type { TensorValue } from '../../client/index.js';
import { seededUniform } from '../random.js';

// Globals read once into the module's scope: in a function sandbox (a Hardened JavaScript
// compartment) every global read goes through the compartment's scope, which costs ~10x per
// read in a hot loop; module-level constants are plain lexical variables.
const { abs, floor, min, max, round } = Math;

export const IMAGE_SIDE_MAX = 4096;
export const MODEL_SIDE = 224;
/** ImageNet's per-channel mean and standard deviation (of RGB in [0, 1]), as torchvision normalises. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** A decoded image: RGB, 8 bits a channel, row after row. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const readU32 = (bytes: Uint8Array, at: number): number => ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;

/** Decodes a PNG (see the file comment for what it takes). Throws TypeError for anything else. */
export function decodePng(png: Uint8Array): RgbImage {
  if (!(png instanceof Uint8Array) || png.byteLength < 8 + 25 || SIGNATURE.some((byte, i) => png[i] !== byte)) throw new TypeError('not a PNG file');
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  while (at + 12 <= png.byteLength) {
    const length = readU32(png, at);
    const type = String.fromCharCode(png[at + 4]!, png[at + 5]!, png[at + 6]!, png[at + 7]!);
    const dataStart = at + 8;
    const dataEnd = dataStart + length;
    if (dataEnd + 4 > png.byteLength) throw new TypeError(`PNG chunk ${type} runs past the end of the file`);
    if (crc32(png, at + 4, dataEnd) !== readU32(png, dataEnd)) throw new TypeError(`PNG chunk ${type} fails its CRC`);
    if (type === 'IHDR') {
      width = readU32(png, dataStart);
      height = readU32(png, dataStart + 4);
      const depth = png[dataStart + 8];
      const colour = png[dataStart + 9]!;
      const interlace = png[dataStart + 12];
      if (width < 1 || height < 1 || width > IMAGE_SIDE_MAX || height > IMAGE_SIDE_MAX) throw new TypeError(`a PNG of ${width} x ${height}; 1 to ${IMAGE_SIDE_MAX} pixels a side`);
      if (depth !== 8 || CHANNELS[colour] === undefined || interlace !== 0) throw new TypeError('only 8-bit grey, grey + alpha, RGB and RGBA PNGs, not interlaced, are decoded');
      channels = CHANNELS[colour]!;
    } else if (type === 'IDAT') {
      idat.push(png.subarray(dataStart, dataEnd));
      idatBytes += length;
    } else if (type === 'IEND') {
      break;
    }
    at = dataEnd + 4;
  }
  if (channels === 0 || idat.length === 0) throw new TypeError('a PNG without IHDR or IDAT');
  const compressed = new Uint8Array(idatBytes);
  let offset = 0;
  for (const part of idat) {
    compressed.set(part, offset);
    offset += part.byteLength;
  }
  const stride = width * channels;
  const expected = (stride + 1) * height;
  let raw: Uint8Array;
  try {
    raw = unzlibSync(compressed, { out: new Uint8Array(expected) });
  } catch (error) {
    throw new TypeError(`the PNG's image data does not inflate: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (raw.byteLength !== expected) throw new TypeError(`the PNG's image data holds ${raw.byteLength} bytes, not ${expected}`);
  const pixels = unfilter(raw, stride, height, channels);
  if (channels === 3) return { width, height, rgb: pixels };
  const rgb = new Uint8Array(width * height * 3);
  const writer = new DataView(rgb.buffer); // see unfilter
  for (let p = 0; p < width * height; p++) {
    const source = p * channels;
    const grey = channels < 3;
    writer.setUint8(p * 3, pixels[source]!);
    writer.setUint8(p * 3 + 1, pixels[grey ? source : source + 1]!);
    writer.setUint8(p * 3 + 2, pixels[grey ? source : source + 2]!);
  }
  return { width, height, rgb };
}

/**
 * Undoes PNG's per-row filters (None, Sub, Up, Average, Paeth). Writes go through a DataView: in
 * a sandbox (after Hardened JavaScript's lockdown) an indexed store into a typed array is ~20x
 * slower than a DataView store (measured on Node 20), while indexed reads are not.
 */
function unfilter(raw: Uint8Array, stride: number, height: number, bytesPerPixel: number): Uint8Array {
  const out = new Uint8Array(stride * height);
  const writer = new DataView(out.buffer);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = y * (stride + 1) + 1;
    const line = y * stride;
    const previous = line - stride;
    if (filter !== undefined && filter > 4) throw new TypeError(`PNG row ${y} has filter type ${filter}`);
    for (let x = 0; x < stride; x++) {
      const value = raw[row + x]!;
      let predicted = 0;
      if (filter === 1) predicted = x >= bytesPerPixel ? out[line + x - bytesPerPixel]! : 0;
      else if (filter === 2) predicted = y > 0 ? out[previous + x]! : 0;
      else if (filter === 3) predicted = ((x >= bytesPerPixel ? out[line + x - bytesPerPixel]! : 0) + (y > 0 ? out[previous + x]! : 0)) >>> 1;
      else if (filter === 4) {
        const left = x >= bytesPerPixel ? out[line + x - bytesPerPixel]! : 0;
        const up = y > 0 ? out[previous + x]! : 0;
        const upLeft = y > 0 && x >= bytesPerPixel ? out[previous + x - bytesPerPixel]! : 0;
        const estimate = left + up - upLeft;
        const pa = abs(estimate - left);
        const pb = abs(estimate - up);
        const pc = abs(estimate - upLeft);
        predicted = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      }
      writer.setUint8(line + x, (value + predicted) & 0xff);
    }
  }
  return out;
}

/** Encodes RGB pixels as a PNG (8-bit RGB, filter None). */
export function encodePng(image: RgbImage): Uint8Array {
  const stride = image.width * 3;
  const raw = new Uint8Array((stride + 1) * image.height);
  for (let y = 0; y < image.height; y++) raw.set(image.rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const chunk = (type: string, data: Uint8Array): Uint8Array => {
    const out = new Uint8Array(12 + data.byteLength);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.byteLength);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(data, 8);
    view.setUint32(8 + data.byteLength, crc32(out, 4, 8 + data.byteLength));
    return out;
  };
  const header = new Uint8Array(13);
  const headerView = new DataView(header.buffer);
  headerView.setUint32(0, image.width);
  headerView.setUint32(4, image.height);
  header.set([8, 2, 0, 0, 0], 8);
  const parts = [new Uint8Array(SIGNATURE), chunk('IHDR', header), chunk('IDAT', zlibSync(raw, { level: 6 })), chunk('IEND', new Uint8Array(0))];
  const png = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    png.set(part, offset);
    offset += part.byteLength;
  }
  return png;
}

/**
 * The model's input for an image: resized to 224 x 224 (bilinear, pixel centres aligned as
 * torchvision and PIL do without antialiasing), scaled to [0, 1], normalised with ImageNet's
 * mean and std, float32 NCHW [1, 3, 224, 224] as little-endian bytes.
 */
export function imageTensor(image: RgbImage, side = MODEL_SIDE): TensorValue {
  const data = new Uint8Array(3 * side * side * 4);
  const view = new DataView(data.buffer);
  const { width, height, rgb } = image;
  // Source columns and weights, once per output column (the same for every row).
  const x0s = new Int32Array(side);
  const x1s = new Int32Array(side);
  const fxs = new Float64Array(side);
  for (let x = 0; x < side; x++) {
    const sx = min(max((x + 0.5) * (width / side) - 0.5, 0), width - 1);
    x0s[x] = floor(sx);
    x1s[x] = min(x0s[x]! + 1, width - 1);
    fxs[x] = sx - x0s[x]!;
  }
  const scale = [1 / (255 * IMAGENET_STD[0]), 1 / (255 * IMAGENET_STD[1]), 1 / (255 * IMAGENET_STD[2])];
  const offset = [IMAGENET_MEAN[0] / IMAGENET_STD[0], IMAGENET_MEAN[1] / IMAGENET_STD[1], IMAGENET_MEAN[2] / IMAGENET_STD[2]];
  const plane = side * side;
  for (let y = 0; y < side; y++) {
    const sy = min(max((y + 0.5) * (height / side) - 0.5, 0), height - 1);
    const y0 = floor(sy);
    const row0 = y0 * width * 3;
    const row1 = min(y0 + 1, height - 1) * width * 3;
    const fy = sy - y0;
    for (let x = 0; x < side; x++) {
      const a = x0s[x]! * 3;
      const b = x1s[x]! * 3;
      const fx = fxs[x]!;
      for (let c = 0; c < 3; c++) {
        const top = rgb[row0 + a + c]! * (1 - fx) + rgb[row0 + b + c]! * fx;
        const bottom = rgb[row1 + a + c]! * (1 - fx) + rgb[row1 + b + c]! * fx;
        // ((value / 255) - mean) / std
        view.setFloat32((c * plane + y * side + x) * 4, (top * (1 - fy) + bottom * fy) * scale[c]! - offset[c]!, true);
      }
    }
  }
  return { type: 'float32', dims: [1, 3, side, side], data };
}

/** Decode, resize and normalise: a PNG file to the models' input. */
export function preprocessPng(png: Uint8Array): TensorValue {
  return imageTensor(decodePng(png));
}

/**
 * The sample image, generated (the same bytes on every machine): a 320 x 240 PNG of a sunset-like
 * gradient with a few seeded discs and some noise, so that it is a photograph-sized input to
 * decode and resize, not a flat colour.
 */
export function sampleImage(seed = 7, width = 320, height = 240): Uint8Array {
  const random = seededUniform(seed);
  const discs = Array.from({ length: 6 }, () => ({ x: random() * width, y: random() * height, r: 15 + random() * 50, colour: [random() * 255, random() * 255, random() * 255] }));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let colour = [255 * (1 - y / height) * 0.9 + 20, 120 * (x / width) + 40, 200 * (y / height) + 30];
      for (const disc of discs) if ((x - disc.x) ** 2 + (y - disc.y) ** 2 < disc.r ** 2) colour = disc.colour;
      for (let c = 0; c < 3; c++) rgb[(y * width + x) * 3 + c] = max(0, min(255, round(colour[c]! + (random() - 0.5) * 24)));
    }
  }
  return encodePng({ width, height, rgb });
}
