import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InvalidArgumentError } from '../errors';
import type { Dataset, DatasetSource } from './dataset';
import { readFileOrExplain } from './read-file';

/**
 * `idx:IMAGES,LABELS`: the IDX files MNIST and Fashion-MNIST ship as (LeCun's format: two zero
 * bytes, a type byte, a dimension count, big-endian int32 sizes, then the values row-major),
 * gzipped or not. Images of unsigned bytes are scaled to [0, 1] as the mnist package's are;
 * images are [count, rows, cols] (one channel) or [count, rows, cols, channels].
 */

/** IDX element types: the byte after the two zeros, and how to read one element. */
const TYPES: Record<
  number,
  { name: string; bytes: number; read: (v: DataView, at: number) => number }
> = {
  0x08: { name: 'unsigned byte', bytes: 1, read: (v, at) => v.getUint8(at) },
  0x09: { name: 'signed byte', bytes: 1, read: (v, at) => v.getInt8(at) },
  0x0b: { name: 'short', bytes: 2, read: (v, at) => v.getInt16(at) },
  0x0c: { name: 'int', bytes: 4, read: (v, at) => v.getInt32(at) },
  0x0d: { name: 'float', bytes: 4, read: (v, at) => v.getFloat32(at) },
  0x0e: { name: 'double', bytes: 8, read: (v, at) => v.getFloat64(at) },
};

interface IdxArray {
  type: number;
  dims: number[];
  values: Float64Array | Float32Array;
}

const isGzip = (b: Buffer): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/** Parses one IDX file (gunzipped first when it is gzip); errors name the file. */
export function parseIdx(file: string, raw: Buffer, scaleBytes: boolean): IdxArray {
  const fail = (why: string) => new InvalidArgumentError(`IDX file ${file}: ${why}`);
  let bytes = raw;
  if (isGzip(raw)) {
    try {
      bytes = gunzipSync(raw);
    } catch (err) {
      throw fail(`gzip data is corrupt (${(err as Error).message})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0)
    throw fail('not an IDX file (it must start with two zero bytes, a type byte and a rank)');
  const type = TYPES[bytes[2]];
  if (!type) throw fail(`unknown element type 0x${bytes[2].toString(16).padStart(2, '0')}`);
  const rank = bytes[3];
  if (rank < 1 || bytes.length < 4 + 4 * rank)
    throw fail(`the header promises ${rank} dimensions but the file ends first`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = dims.reduce((p, d) => p * d, 1);
  const start = 4 + 4 * rank;
  const expected = start + count * type.bytes;
  if (bytes.length !== expected)
    throw fail(
      `dimensions [${dims.join(', ')}] of ${type.name}s need ${expected} bytes, the file has ${bytes.length}`,
    );
  const bytesType = bytes[2] === 0x08;
  const values = scaleBytes && bytesType ? new Float32Array(count) : new Float64Array(count);
  if (bytesType) {
    const scale = scaleBytes ? 1 / 255 : 1;
    for (let i = 0; i < count; i++) values[i] = bytes[start + i] * scale;
  } else {
    for (let i = 0; i < count; i++) values[i] = type.read(view, start + i * type.bytes);
  }
  return { type: bytes[2], dims, values };
}

function labelsOf(file: string, idx: IdxArray): Int32Array {
  if (idx.dims.length !== 1)
    throw new InvalidArgumentError(
      `IDX file ${file}: labels must be one dimension, got [${idx.dims.join(', ')}]`,
    );
  const labels = new Int32Array(idx.values.length);
  for (let i = 0; i < labels.length; i++) {
    const v = idx.values[i];
    if (!Number.isInteger(v) || v < 0)
      throw new InvalidArgumentError(
        `IDX file ${file}: label ${i} is ${v}, not a class number (an integer >= 0)`,
      );
    labels[i] = v;
  }
  return labels;
}

export class IdxSource implements DatasetSource {
  readonly spec: string;

  constructor(
    readonly images: string,
    readonly labels: string,
  ) {
    this.spec = `idx:${images},${labels}`;
  }

  async fingerprint(): Promise<string | undefined> {
    try {
      const stats = await Promise.all([this.images, this.labels].map((f) => fs.stat(f)));
      return JSON.stringify([
        ...[this.images, this.labels].map((f) => path.resolve(f)),
        ...stats.map((s) => [s.size, s.mtimeMs]),
      ]);
    } catch {
      return undefined; // load() says which file is missing
    }
  }

  async load(): Promise<Dataset> {
    const [imageBytes, labelBytes] = await Promise.all([
      readFileOrExplain(this.images, 'IDX file'),
      readFileOrExplain(this.labels, 'IDX file'),
    ]);
    const images = parseIdx(this.images, imageBytes, true);
    const labels = labelsOf(this.labels, parseIdx(this.labels, labelBytes, false));
    if (images.dims.length !== 3 && images.dims.length !== 4)
      throw new InvalidArgumentError(
        `IDX file ${this.images}: images must be [count, rows, cols] or [count, rows, cols, channels], got [${images.dims.join(', ')}]`,
      );
    if (images.dims[0] !== labels.length)
      throw new InvalidArgumentError(
        `IDX files ${this.images} and ${this.labels} disagree: ${images.dims[0]} images, ${labels.length} labels`,
      );
    const numClasses = labels.reduce((m, l) => Math.max(m, l + 1), 0);
    if (numClasses < 2)
      throw new InvalidArgumentError(
        `IDX file ${this.labels}: every label is ${labels[0] ?? 'missing'}; at least 2 classes are needed`,
      );
    const featureShape = [images.dims[1], images.dims[2], images.dims[3] ?? 1];
    return {
      // Unsigned bytes come scaled into a Float32Array already; other types are read as doubles.
      features:
        images.values instanceof Float32Array ? images.values : Float32Array.from(images.values),
      labels,
      count: labels.length,
      featureShape,
      numClasses,
      classNames: Array.from({ length: numClasses }, (_, c) => String(c)),
      exampleNames: Array.from({ length: labels.length }, (_, i) => `${this.images}#${i}`),
    };
  }
}
