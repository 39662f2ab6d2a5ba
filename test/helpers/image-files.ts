import { PNG } from 'pngjs';

/** The bytes of image files tests write, in the formats the loaders read. */

/** An IDX file of unsigned bytes: two zero bytes, type 0x08, the rank, big-endian sizes, values. */
export function idxFile(dims: number[], values: ArrayLike<number>): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(Array.from(values))]);
}

/** An opaque PNG whose pixel (x, y) is `rgb(x, y)`, each channel 0..255. */
export function pngFile(
  width: number,
  height: number,
  rgb: (x: number, y: number) => readonly number[],
): Buffer {
  const image = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgb(x, y);
      image.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  return PNG.sync.write(image);
}
