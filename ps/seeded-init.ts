import { InvalidArgumentError } from '../core/errors';
import { drawInitialValues, type ParamInfo } from '../core/model-spec';
import { elementCount } from '../core/placement';
import { runYielding, zeroedArrays } from '../core/yielding';
import type { SeededInit__Output } from '../proto/gen/caviar/v1/SeededInit';
import type { SliceRange } from './slice-assembler';

const INITS = new Set<string>(['he_normal', 'glorot_uniform', 'zeros', 'ones']);

/** What a seeded Init gives each slice: its initial values, and its moving-average momentum if any. */
export interface SeededSlices {
  values: Float32Array[];
  /** Per slice: set for BatchNorm's moving statistics (see ParamInit.moving_average). */
  movingAverages: Array<number | undefined>;
}

/**
 * The initial values of `slices`, drawn here from the trial's seed and its tensors' shapes and
 * initializers: the same values as core/model-spec initialSlice's, without a model-sized copy
 * anywhere. Refuses (INVALID_ARGUMENT) a slice of a tensor the header does not describe, or past
 * its end, before drawing anything.
 */
export async function seededSliceValues(
  trial: string,
  seeded: SeededInit__Output,
  slices: readonly SliceRange[],
): Promise<SeededSlices> {
  const params = new Map<string, ParamInfo>();
  for (const p of seeded.params) {
    if (!INITS.has(p.init))
      throw new InvalidArgumentError(
        `Init of trial ${trial}: ${p.name} has initializer "${p.init}"`,
      );
    if (!(p.moving_average >= 0 && p.moving_average < 1))
      throw new InvalidArgumentError(
        `Init of trial ${trial}: ${p.name} has moving-average momentum ${p.moving_average}, not in [0, 1)`,
      );
    params.set(p.name, {
      name: p.name,
      shape: p.shape,
      init: p.init as ParamInfo['init'],
      fanIn: p.fan_in,
      fanOut: p.fan_out,
      ...(p.moving_average > 0 ? { movingAverage: p.moving_average } : {}),
    });
  }
  const found = slices.map((s) => {
    const p = params.get(s.name);
    if (!p) throw new InvalidArgumentError(`Init of trial ${trial}: no initializer for ${s.name}`);
    if (s.start + s.length > elementCount(p.shape))
      throw new InvalidArgumentError(
        `Init of trial ${trial}: slice ${s.name}[${s.start}, ${s.start + s.length}) is past the tensor's ${elementCount(p.shape)} elements`,
      );
    return p;
  });
  const values = await runYielding(zeroedArrays(slices.map((s) => s.length)));
  // One walk of each tensor's stream for all of this shard's slices of it: walking from the
  // tensor's start for every slice made a 27M-element kernel in 412 slices cost minutes.
  const byTensor = new Map<string, number[]>();
  slices.forEach((s, i) => byTensor.set(s.name, [...(byTensor.get(s.name) ?? []), i]));
  for (const indices of byTensor.values()) {
    const ranges = indices.map((i) => ({ start: slices[i].start, out: values[i] }));
    // With the event loop free between rounds, so a large slice does not stop the shard
    // answering (keepalive pings, other trials' pushes) for seconds.
    await runYielding(drawInitialValues(found[indices[0]], seeded.seed, ranges));
  }
  return { values, movingAverages: found.map((p) => p.movingAverage) };
}
