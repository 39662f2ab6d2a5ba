/**
 * The augment section of `npm run bench`: milliseconds per MNIST batch of 128 of each kind of
 * augmentation on the worker (worker/augment.ts), to set against the kernels section's
 * ms_per_step of the models it feeds.
 */
import { performance } from 'node:perf_hooks';
import { parseAugment } from '../../core/augment-spec';
import { loadSplits } from '../../core/datasets';
import { augmentBatch } from '../../worker/augment';
import { round } from './stats';

const SPECS = ['flip:h', 'crop:4', 'flip:h,crop:4', 'rotate:15,shear:5,shift:0.1', 'color:0.2'];
const BATCH = 128;

export async function benchAugment(seconds = 1): Promise<Record<string, unknown>[]> {
  const { train } = await loadSplits('mnist');
  const size = train.features.length / train.count;
  const original = train.features.slice(0, BATCH * size);
  const batch = new Float32Array(original.length);
  return SPECS.map((spec) => {
    const aug = parseAugment(spec);
    let steps = 0;
    let spent = 0;
    for (; spent < seconds * 1000 || steps < 3; steps++) {
      batch.set(original);
      const t = performance.now();
      augmentBatch(batch, BATCH, train.featureShape, aug, `bench:${steps}`);
      spent += performance.now() - t;
    }
    return { bench: 'augment', spec, batch: BATCH, steps, ms_per_batch: round(spent / steps, 3) };
  });
}
