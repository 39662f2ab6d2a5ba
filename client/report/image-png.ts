import { PNG } from 'pngjs';

/** Whether examples of this shape are pictures: height × width × 1 (grey) or 3 (RGB) channels. */
export function isImageShape(shape: readonly number[]): boolean {
  return shape.length === 3 && (shape[2] === 1 || shape[2] === 3) && shape[0] > 1 && shape[1] > 1;
}

const toByte = (v: number): number =>
  Number.isFinite(v) ? Math.round(Math.min(1, Math.max(0, v)) * 255) : 0;

/**
 * A PNG of one example: `values` row-major height × width × channels in [0, 1] (MNIST's pixels
 * before normalization), each pixel drawn as a `scale` × `scale` block so a 28 × 28 digit is
 * big enough to read.
 */
export function imagePng(values: ArrayLike<number>, shape: readonly number[], scale = 4): Buffer {
  if (!isImageShape(shape)) throw new RangeError(`[${shape.join(', ')}] is not an image shape`);
  const [height, width, channels] = shape;
  if (values.length !== height * width * channels)
    throw new RangeError(`${values.length} values do not fill a ${shape.join('x')} image`);
  const png = new PNG({ width: width * scale, height: height * scale });
  for (let y = 0; y < height * scale; y++) {
    for (let x = 0; x < width * scale; x++) {
      const src = (Math.floor(y / scale) * width + Math.floor(x / scale)) * channels;
      const dst = (y * width * scale + x) * 4;
      for (let c = 0; c < 3; c++)
        png.data[dst + c] = toByte(values[src + (channels === 3 ? c : 0)]);
      png.data[dst + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}
