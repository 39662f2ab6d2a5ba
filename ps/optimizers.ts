import { InvalidArgumentError } from '../core/errors';
import type { OptimizerConfig, OptimizerKind } from '../core/optimizer-config';
import { nativeLoops } from './native-loops';
import { runYielding, zeroedArrays } from '../core/yielding';
import type { OptimizerFunctions } from '../core/native/addon';

/** What an update needs besides the arrays: the scheduled learning rate and the update count. */
export interface StepContext {
  /** The learning rate for this update, already decayed by the schedule. */
  lr: number;
  /** 1-based count of updates of this trial, for Adam's bias correction. */
  step: number;
}

/**
 * An optimizer as a pure function over one slice: `params`, `grad` and each `state[k]` have the
 * same length, and element i of the result depends only on element i of the inputs, so how the
 * parameters are sharded never changes the math. `apply` updates `params` and `state` in place.
 * The caller guarantees every gradient value is finite.
 */
export interface Optimizer {
  readonly kind: OptimizerKind;
  /** Number of Float32Arrays of state per parameter slice (Adam: m and v). */
  readonly stateSize: number;
  apply(
    params: Float32Array,
    grad: Float32Array,
    state: Float32Array[],
    ctx: StepContext,
    cfg: OptimizerConfig,
  ): void;
}

// L2 weight decay enters through the gradient (g + l2·θ), as in Keras's kernel_regularizer, so it
// is scaled by each optimizer's own step size rather than applied as decoupled decay.

/** θ -= lr·g. */
export const sgd: Optimizer = {
  kind: 'sgd',
  stateSize: 0,
  apply(params, grad, _state, { lr }, { l2 }) {
    for (let i = 0; i < params.length; i++) {
      const g = grad[i] + l2 * params[i];
      params[i] -= lr * g;
    }
  },
};

/** v = μ·v + g; θ -= lr·v (tf.train.momentum without Nesterov). */
export const momentum: Optimizer = {
  kind: 'momentum',
  stateSize: 1,
  apply(params, grad, [velocity], { lr }, { l2, momentum: mu }) {
    for (let i = 0; i < params.length; i++) {
      const g = grad[i] + l2 * params[i];
      const v = mu * velocity[i] + g;
      velocity[i] = v;
      params[i] -= lr * v;
    }
  },
};

/**
 * m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²; θ -= lr·m̂/(√v̂ + ε) with m̂ = m/(1-β1^t),
 * v̂ = v/(1-β2^t): tf.train.adam's formula, ε outside the square root.
 */
export const adam: Optimizer = {
  kind: 'adam',
  stateSize: 2,
  apply(params, grad, [m, v], { lr, step }, { l2, beta1, beta2, epsilon }) {
    // The bias corrections are worked out once per step, leaving one divide per element.
    const stepSize = lr / (1 - Math.pow(beta1, step));
    const inverseCorrection2 = 1 / (1 - Math.pow(beta2, step));
    const loop = nativeLoops()?.adam ?? adamLoop;
    loop(params, grad, m, v, stepSize, inverseCorrection2, beta1, beta2, epsilon, l2);
  },
};

/**
 * Adam's per-element loop in JS, where the native addon (whose loop is bit-identical: double
 * arithmetic in this order, float32 storage) does not load. Adam is most of a shard's CPU per
 * push; natively (vectorized) it is about five times faster.
 */
export const adamLoop: OptimizerFunctions['adam'] = (
  params,
  grad,
  m,
  v,
  stepSize,
  inverseCorrection2,
  beta1,
  beta2,
  epsilon,
  l2,
) => {
  const newShare1 = 1 - beta1;
  const newShare2 = 1 - beta2;
  for (let i = 0; i < params.length; i++) {
    const g = grad[i] + l2 * params[i];
    const mi = beta1 * m[i] + newShare1 * g;
    const vi = beta2 * v[i] + newShare2 * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] -= (stepSize * mi) / (Math.sqrt(vi * inverseCorrection2) + epsilon);
  }
};

/**
 * ms = ρ·ms + (1-ρ)·g²; θ -= lr·g/√(ms + ε): tf.train.rmsprop with momentum 0 and centered
 * false (ε inside the square root there, unlike Adam).
 */
export const rmsprop: Optimizer = {
  kind: 'rmsprop',
  stateSize: 1,
  apply(params, grad, [meanSquare], { lr }, { l2, rho, epsilon }) {
    for (let i = 0; i < params.length; i++) {
      const g = grad[i] + l2 * params[i];
      const ms = rho * meanSquare[i] + (1 - rho) * g * g;
      meanSquare[i] = ms;
      params[i] -= (lr * g) / Math.sqrt(ms + epsilon);
    }
  },
};

const OPTIMIZERS: Readonly<Record<OptimizerKind, Optimizer>> = { adam, sgd, momentum, rmsprop };

export function optimizerFor(kind: string): Optimizer {
  const optimizer = (OPTIMIZERS as Readonly<Record<string, Optimizer | undefined>>)[kind];
  if (!optimizer) throw new InvalidArgumentError(`unknown optimizer kind "${kind}"`);
  return optimizer;
}

/** Fresh (zeroed) optimizer state for a slice of `length` elements. */
export function createOptimizerState(optimizer: Optimizer, length: number): Float32Array[] {
  return Array.from({ length: optimizer.stateSize }, () => new Float32Array(length));
}

/**
 * Fresh optimizer state for slices of `lengths` elements, one array at a time with the event
 * loop free between them: a large trial's state is thousands of arrays and most of a gigabyte.
 */
export async function createOptimizerStates(
  optimizer: Optimizer,
  lengths: readonly number[],
): Promise<Float32Array[][]> {
  const n = optimizer.stateSize;
  const flat = await runYielding(
    zeroedArrays(lengths.flatMap((length) => new Array<number>(n).fill(length))),
  );
  return lengths.map((_, i) => flat.slice(i * n, (i + 1) * n));
}
