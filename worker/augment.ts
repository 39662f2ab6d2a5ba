import { isGeometric, type Augmentation } from '../core/augment-spec';
import { bulkUniform } from '../core/seeded-random';

/**
 * Data augmentation of one training batch on the worker, in place on the batch's own copy of
 * its examples (never on the data set: validation, train-dev and test are never touched). Each
 * batch draws from its own stream, keyed like dropout by (trial, seed, epoch, batch), so a batch
 * run again (a lease that ran out) sees the same images. Per example, the geometric steps
 * combine into one affine map about the image's centre, sampled bilinearly; pixels it brings in
 * from outside the image are 0 (the training mean, features being normalized). Flips and crops
 * alone move whole pixels, so they copy values exactly.
 */

/** A reused scratch image, so a batch allocates nothing. */
let scratch = new Float32Array(0);

/** Where output pixel (y, x) comes from: source = inverse · (out − centre − offset) + centre. */
interface InverseMap {
  a: number;
  b: number;
  c: number;
  d: number;
  ty: number;
  tx: number;
  /** Flips and whole-pixel moves only: every source is a pixel, copied without weights. */
  whole: boolean;
}

function draw(uniform: () => number, range: number): number {
  return (uniform() * 2 - 1) * range;
}

function inverseMap(aug: Augmentation, uniform: () => number, h: number, w: number): InverseMap {
  // Every draw happens whatever is enabled, so adding one step leaves the others' draws alone.
  const flipH = uniform() < 0.5 && aug.flipH ? -1 : 1;
  const flipV = uniform() < 0.5 && aug.flipV ? -1 : 1;
  const cropY = Math.round(draw(uniform, aug.crop));
  const cropX = Math.round(draw(uniform, aug.crop));
  const shiftY = draw(uniform, aug.shift * h);
  const shiftX = draw(uniform, aug.shift * w);
  const angle = (draw(uniform, aug.rotate) * Math.PI) / 180;
  const shear = Math.tan((draw(uniform, aug.shear) * Math.PI) / 180);
  // Forward: out = R · S · F · (src − c) + c + t, with S = [[1, 0], [shear, 1]] (rows y, x).
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const rs = [cos, -sin, sin + cos * shear, cos - sin * shear];
  const m = [rs[0] * flipV, rs[1] * flipH, rs[2] * flipV, rs[3] * flipH];
  const det = m[0] * m[3] - m[1] * m[2];
  return {
    a: m[3] / det,
    b: -m[1] / det,
    c: -m[2] / det,
    d: m[0] / det,
    ty: cropY + shiftY,
    tx: cropX + shiftX,
    whole: aug.shift === 0 && aug.rotate === 0 && aug.shear === 0,
  };
}

function transformImage(
  image: Float32Array,
  h: number,
  w: number,
  channels: number,
  map: InverseMap,
): void {
  const size = h * w * channels;
  if (scratch.length < size) scratch = new Float32Array(size);
  const src = scratch;
  src.set(image.subarray(0, size));
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const C = channels;
  if (map.whole) {
    // a and d are ±1, b and c 0: source (cy + a·(y − cy − ty), cx + d·(x − cx − tx)).
    for (let y = 0; y < h; y++) {
      const sy = Math.round(map.a * (y - cy - map.ty) + cy);
      for (let x = 0; x < w; x++) {
        const sx = Math.round(map.d * (x - cx - map.tx) + cx);
        const out = (y * w + x) * C;
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        for (let c = 0; c < C; c++) image[out + c] = inside ? src[(sy * w + sx) * C + c] : 0;
      }
    }
    return;
  }
  // The four neighbours' offsets (-1: outside the image, or no weight) and weights.
  const at = (yy: number, xx: number, weight: number): number =>
    weight <= 1e-9 || yy < 0 || yy >= h || xx < 0 || xx >= w ? -1 : (yy * w + xx) * C;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const oy = y - cy - map.ty;
      const ox = x - cx - map.tx;
      const sy = map.a * oy + map.b * ox + cy;
      const sx = map.c * oy + map.d * ox + cx;
      // A whole-pixel source (flips, crops) lands within rounding of an integer: copy it exactly.
      const y0 = Math.floor(sy + 1e-9);
      const x0 = Math.floor(sx + 1e-9);
      const fy = Math.max(0, sy - y0);
      const fx = Math.max(0, sx - x0);
      const w00 = (1 - fy) * (1 - fx);
      const w01 = (1 - fy) * fx;
      const w10 = fy * (1 - fx);
      const w11 = fy * fx;
      const i00 = at(y0, x0, w00);
      const i01 = at(y0, x0 + 1, w01);
      const i10 = at(y0 + 1, x0, w10);
      const i11 = at(y0 + 1, x0 + 1, w11);
      const out = (y * w + x) * C;
      for (let c = 0; c < C; c++) {
        let v = 0;
        if (i00 >= 0) v += w00 * src[i00 + c];
        if (i01 >= 0) v += w01 * src[i01 + c];
        if (i10 >= 0) v += w10 * src[i10 + c];
        if (i11 >= 0) v += w11 * src[i11 + c];
        image[out + c] = v;
      }
    }
  }
}

/** Augments `count` examples of `shape` in `features` in place; `noiseKey` seeds the batch. */
export function augmentBatch(
  features: Float32Array,
  count: number,
  shape: readonly number[],
  aug: Augmentation,
  noiseKey: string,
): void {
  const geometric = isGeometric(aug);
  if (!geometric && aug.color === 0) return;
  const uniform = bulkUniform(`augment:${noiseKey}`);
  const size = features.length / Math.max(1, count);
  const [h, w, channels] = shape.length === 3 ? shape : [1, size, 1];
  for (let e = 0; e < count; e++) {
    const image = features.subarray(e * size, (e + 1) * size);
    const map = inverseMap(aug, uniform, h, w);
    if (geometric) transformImage(image, h, w, channels, map);
    if (aug.color > 0) {
      const perChannel = size / channels;
      for (let c = 0; c < channels; c++) {
        const delta = draw(uniform, aug.color);
        for (let p = 0; p < perChannel; p++) image[p * channels + c] += delta;
      }
    }
  }
}
