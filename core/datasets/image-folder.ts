import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { InvalidArgumentError } from '../errors';
import type { Dataset, DatasetSource } from './dataset';
import { readFailure } from './read-file';

/**
 * `images:DIR`: one sub-folder per class, its PNG and JPEG files the class's examples (Keras's
 * image_dataset_from_directory layout; classes in name order, other files ignored). Pixels are
 * scaled to [0, 1]; a data set whose every image is gray (R = G = B, as gray PNGs and JPEGs
 * decode) has one channel, any other three (alpha is dropped). Images must share one size unless
 * one is given (`images:DIR@HxW`, the CLI's --image-size), to which each is resized bilinearly
 * with half-pixel centres, as tf.image.resize does.
 */

const IMAGE_FILE = /\.(png|jpe?g)$/i;

export type ImageSize = [height: number, width: number];

/** An image decoded to RGB, [height][width][3], values 0..255. */
interface Rgb {
  width: number;
  height: number;
  data: Uint8Array;
}

function decodeImage(bytes: Buffer): Rgb {
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) {
    const png = PNG.sync.read(bytes);
    const data = new Uint8Array(png.width * png.height * 3);
    for (let p = 0, q = 0; p < png.data.length; p += 4, q += 3) {
      data[q] = png.data[p];
      data[q + 1] = png.data[p + 1];
      data[q + 2] = png.data[p + 2];
    }
    return { width: png.width, height: png.height, data };
  }
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8)
    return decodeJpeg(bytes, { useTArray: true, formatAsRGBA: false });
  throw new Error('not a PNG or JPEG file');
}

function isGray(image: Rgb): boolean {
  const d = image.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

/** Bilinear resize of an RGB image to [height][width][3] floats in [0, 1]. */
export function resizeBilinear(image: Rgb, height: number, width: number): Float32Array {
  const out = new Float32Array(height * width * 3);
  const sy = image.height / height;
  const sx = image.width / width;
  const clamp = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  for (let y = 0; y < height; y++) {
    const fy = clamp((y + 0.5) * sy - 0.5, image.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = clamp((x + 0.5) * sx - 0.5, image.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const at = (yy: number, xx: number) => image.data[(yy * image.width + xx) * 3 + c];
        const top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx;
        const bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx;
        out[(y * width + x) * 3 + c] = (top * (1 - wy) + bottom * wy) / 255;
      }
    }
  }
  return out;
}

/** `images:DIR` or `images:DIR@HxW`: the folder and the size asked for. */
export function parseImagesSpec(rest: string): { dir: string; size?: ImageSize } {
  const sized = /^(.*)@(\d+)x(\d+)$/.exec(rest);
  if (!sized) return { dir: rest };
  const size: ImageSize = [Number(sized[2]), Number(sized[3])];
  if (size.some((n) => n < 1 || n > 4096))
    throw new InvalidArgumentError(`image size ${size.join('x')}: each side must be in 1..4096`);
  return { dir: sized[1], size };
}

interface ImageFile {
  /** Relative to the data set's folder, as messages and reports name it. */
  name: string;
  label: number;
}

export class ImageFolderSource implements DatasetSource {
  readonly spec: string;

  constructor(
    readonly dir: string,
    readonly size?: ImageSize,
  ) {
    this.spec = `images:${dir}${size ? `@${size[0]}x${size[1]}` : ''}`;
  }

  private fail(why: string): InvalidArgumentError {
    return new InvalidArgumentError(`images:${this.dir}: ${why}`);
  }

  /** The classes' folders and their image files, in name order. */
  private async listing(): Promise<{ classNames: string[]; files: ImageFile[] }> {
    let entries;
    try {
      entries = await fs.readdir(this.dir, { withFileTypes: true });
    } catch (err) {
      throw this.fail(`cannot read the folder: ${readFailure(err)}`);
    }
    const classNames = entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
    if (classNames.length < 2)
      throw this.fail(`expected one sub-folder per class (at least 2), found ${classNames.length}`);
    const files: ImageFile[] = [];
    for (const [label, name] of classNames.entries()) {
      const inClass = (await fs.readdir(path.join(this.dir, name)))
        .filter((f) => IMAGE_FILE.test(f))
        .sort();
      if (inClass.length === 0) throw this.fail(`class folder ${name} has no PNG or JPEG files`);
      for (const f of inClass) files.push({ name: path.join(name, f), label });
    }
    return { classNames, files };
  }

  async fingerprint(): Promise<string | undefined> {
    try {
      const { files } = await this.listing();
      const stats = await Promise.all(files.map((f) => fs.stat(path.join(this.dir, f.name))));
      return JSON.stringify([
        path.resolve(this.dir),
        this.size ?? null,
        files.map((f, i) => [f.name, stats[i].size, stats[i].mtimeMs]),
      ]);
    } catch {
      return undefined; // load() says what is wrong
    }
  }

  async load(): Promise<Dataset> {
    const { classNames, files } = await this.listing();
    const images: Float32Array[] = [];
    let gray = true;
    let shape: ImageSize | undefined = this.size;
    for (const file of files) {
      let image: Rgb;
      try {
        image = decodeImage(await fs.readFile(path.join(this.dir, file.name)));
      } catch (err) {
        const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
        throw this.fail(`cannot decode ${file.name}: ${why}`);
      }
      shape ??= [image.height, image.width];
      if (!this.size && (image.height !== shape[0] || image.width !== shape[1]))
        throw this.fail(
          `${file.name} is ${image.height}x${image.width}, the first image ${shape[0]}x${shape[1]}; give a size to resize them all (--image-size HxW)`,
        );
      gray &&= isGray(image);
      images.push(resizeBilinear(image, shape[0], shape[1]));
    }
    const [height, width] = shape as ImageSize;
    const channels = gray ? 1 : 3;
    const size = height * width * channels;
    const features = new Float32Array(images.length * size);
    images.forEach((rgb, i) => {
      if (channels === 3) features.set(rgb, i * size);
      else for (let p = 0; p < height * width; p++) features[i * size + p] = rgb[p * 3];
    });
    return {
      features,
      labels: Int32Array.from(files, (f) => f.label),
      count: files.length,
      featureShape: [height, width, channels],
      numClasses: classNames.length,
      classNames,
      exampleNames: files.map((f) => path.join(this.dir, f.name)),
    };
  }
}
