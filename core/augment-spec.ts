import { InvalidArgumentError } from './errors';

/**
 * A trial's data augmentation, as `--augment` and a sweep's `train.augment` write it: a
 * comma-separated list of `flip:h|v|hv` (mirror with probability ½ along each axis named),
 * `crop:PAD` (pad by PAD pixels and crop back at a random offset, i.e. shift by a whole number
 * of pixels in [-PAD, PAD]), `shift:FRAC` (shift by up to FRAC of the side, sub-pixel),
 * `rotate:DEG` and `shear:DEG` (uniform in ±DEG), and `color:AMOUNT` (add a uniform shift in
 * ±AMOUNT to each channel; features are normalized, so AMOUNT is in standard deviations).
 * Empty, or `none`, is no augmentation.
 */
export interface Augmentation {
  flipH: boolean;
  flipV: boolean;
  crop: number;
  shift: number;
  rotate: number;
  shear: number;
  color: number;
}

export const NO_AUGMENTATION: Readonly<Augmentation> = Object.freeze({
  flipH: false,
  flipV: false,
  crop: 0,
  shift: 0,
  rotate: 0,
  shear: 0,
  color: 0,
});

const HELP = 'flip:h|v|hv, crop:PAD, shift:FRAC, rotate:DEG, shear:DEG, color:AMOUNT';

function amount(text: string, name: string, max: number, integer = false): number {
  const v = Number(text);
  if (
    text.trim() === '' ||
    !Number.isFinite(v) ||
    v < 0 ||
    v > max ||
    (integer && !Number.isInteger(v))
  )
    throw new InvalidArgumentError(
      `augment ${name}:${text}: expected ${integer ? 'an integer' : 'a number'} in 0..${max}`,
    );
  return v;
}

export function parseAugment(text: string): Augmentation {
  const spec = text.trim();
  const out: Augmentation = { ...NO_AUGMENTATION };
  if (spec === '' || spec === 'none') return out;
  for (const part of spec.split(',')) {
    const [name, value = '', ...extra] = part.trim().split(':');
    if (extra.length > 0) throw new InvalidArgumentError(`augment "${part}": expected NAME:VALUE`);
    switch (name) {
      case 'flip':
        if (!['h', 'v', 'hv', 'vh'].includes(value))
          throw new InvalidArgumentError(
            `augment flip:${value}: expected flip:h, flip:v or flip:hv`,
          );
        out.flipH = value.includes('h');
        out.flipV = value.includes('v');
        break;
      case 'crop':
        out.crop = amount(value, name, 1024, true);
        break;
      case 'shift':
        out.shift = amount(value, name, 1);
        break;
      case 'rotate':
        out.rotate = amount(value, name, 180);
        break;
      case 'shear':
        out.shear = amount(value, name, 60);
        break;
      case 'color':
        out.color = amount(value, name, 10);
        break;
      default:
        throw new InvalidArgumentError(`augment "${part}": unknown; expected ${HELP}`);
    }
  }
  return out;
}

/** The canonical text of an augmentation ("" for none), as trials carry it. */
export function formatAugment(a: Augmentation): string {
  const parts: string[] = [];
  if (a.flipH || a.flipV) parts.push(`flip:${a.flipH ? 'h' : ''}${a.flipV ? 'v' : ''}`);
  if (a.crop > 0) parts.push(`crop:${a.crop}`);
  if (a.shift > 0) parts.push(`shift:${a.shift}`);
  if (a.rotate > 0) parts.push(`rotate:${a.rotate}`);
  if (a.shear > 0) parts.push(`shear:${a.shear}`);
  if (a.color > 0) parts.push(`color:${a.color}`);
  return parts.join(',');
}

/** Whether the augmentation moves pixels (and so needs image features [H, W, C]). */
export function isGeometric(a: Augmentation): boolean {
  return a.flipH || a.flipV || a.crop > 0 || a.shift > 0 || a.rotate > 0 || a.shear > 0;
}

/** Throws where the data's features cannot take the augmentation. */
export function checkAugmentFits(a: Augmentation, featureShape: readonly number[]): void {
  if (isGeometric(a) && featureShape.length !== 3)
    throw new InvalidArgumentError(
      `augment ${formatAugment(a)} moves pixels and needs images [height, width, channels]; this data set has features of shape [${featureShape.join(', ')}]`,
    );
}
