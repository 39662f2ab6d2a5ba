import type { TrialSpec } from '../../proto/gen/caviar/v1/TrialSpec';
import { InvalidArgumentError } from '../errors';
import { formatModelSpec, type ModelSpec } from '../model-spec';
import { resolveOptimizerConfig } from '../optimizer-config';
import { formatAugment, parseAugment } from '../augment-spec';
import { seededUniform, type Uniform } from '../seeded-random';
import {
  paramValueProblem,
  PARAM_RULES,
  pow2Exponents,
  type Hyper,
  type JsonValue,
  type SearchDomain,
  type SearchSpace,
} from './search-space';
import type { SweepSpec, TrainSettings } from './spec';
import type { SweepModel } from './model-section';
import { instantiateTemplate } from './model-template';

function clamp(v: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, v));
}

function logUniform(low: number, high: number, u: number): number {
  return Math.exp(Math.log(low) + u * (Math.log(high) - Math.log(low)));
}

/** One draw from a domain, using exactly one number of `uniform`. */
export function sampleDomain(domain: SearchDomain, uniform: Uniform): JsonValue {
  const u = uniform();
  switch (domain.kind) {
    case 'uniform':
      return domain.low + u * (domain.high - domain.low);
    case 'log_uniform':
      // exp(log) can land a hair outside the range.
      return clamp(logUniform(domain.low, domain.high, u), domain.low, domain.high);
    case 'int':
      return domain.low + Math.floor(u * (domain.high - domain.low + 1));
    case 'int_log':
      return clamp(
        Math.round(logUniform(domain.low - 0.5, domain.high + 0.5, u)),
        domain.low,
        domain.high,
      );
    case 'pow2': {
      const { first, last } = pow2Exponents(domain.low, domain.high);
      return 2 ** (first + Math.floor(u * (last - first + 1)));
    }
    case 'choice':
      // A copy, so a caller editing a trial's hidden list cannot edit the space.
      return structuredClone(domain.values[Math.floor(u * domain.values.length)]);
  }
}

/**
 * `count` trials drawn at random from the space: a pure function of (space, count, seed,
 * round). Each (round, trial, name) has its own random stream, so trial i is the same whatever
 * `count` is, and adding a hyper-parameter to the space leaves the others' draws alone.
 */
export function sampleTrials(space: SearchSpace, count: number, seed: number, round = 0): Hyper[] {
  if (!Number.isInteger(count) || count < 0)
    throw new InvalidArgumentError(`trial count must be a non-negative integer, got ${count}`);
  return Array.from({ length: count }, (_, trial) => {
    const hyper: Hyper = {};
    for (const [name, domain] of Object.entries(space))
      hyper[name] = sampleDomain(domain, seededUniform(`sweep:${seed}:${round}:${trial}:${name}`));
    return hyper;
  });
}

/** One trial's settings: the sweep's fixed ones with its sampled hyper-parameters applied. */
export interface TrialSettings {
  hyper: Hyper;
  train: TrainSettings;
  model: ModelSpec;
  /** The wire message a coordinator creates the trial from, every field set. */
  trialSpec: TrialSpec;
}

function applyModel(model: SweepModel, hyper: Hyper): ModelSpec {
  if (model.type === 'template') return instantiateTemplate(model, hyper);
  if (model.type !== 'mlp') return model;
  if (hyper.hidden !== undefined) return { type: 'mlp', hidden: [...(hyper.hidden as number[])] };
  if (hyper.layers === undefined && hyper.hidden_units === undefined) return model;
  // The fixed model supplies what is not searched: its depth, or its first layer's width.
  const layers = (hyper.layers as number | undefined) ?? model.hidden.length;
  const units = (hyper.hidden_units as number | undefined) ?? model.hidden[0];
  return { type: 'mlp', hidden: Array.from({ length: layers }, () => units) };
}

/**
 * The trial a sweep runs for `hyper`: each sampled value overrides the fixed setting of the
 * same name; `hidden`, or `layers` and `hidden_units` (hidden = units repeated layers times),
 * override an MLP; a graph template's placeholders take their values from `hyper`. `name` becomes the trial's name (its id; "" lets the coordinator choose).
 * Throws InvalidArgumentError for a name a sweep cannot set or a value out of its range.
 */
export function applyHyper(spec: SweepSpec, hyper: Hyper, name = ''): TrialSettings {
  const train: TrainSettings = { ...spec.train };
  const placeholders = spec.model.type === 'template' ? spec.model.placeholders : [];
  for (const [key, value] of Object.entries(hyper)) {
    // A placeholder's value is checked where it lands, by the model it makes.
    if (placeholders.includes(key)) continue;
    const problem = paramValueProblem(key, value);
    if (problem) throw new InvalidArgumentError(`trial hyper-parameters: ${problem}`);
    if (PARAM_RULES[key].section === 'train') Object.assign(train, { [key]: value });
  }
  if (
    spec.model.type === 'mlp' &&
    hyper.hidden !== undefined &&
    (hyper.layers !== undefined || hyper.hidden_units !== undefined)
  )
    throw new InvalidArgumentError('trial hyper-parameters: hidden, or layers and hidden_units');
  if (spec.model.type === 'lenet5' && ['hidden', 'layers', 'hidden_units'].some((k) => k in hyper))
    throw new InvalidArgumentError('trial hyper-parameters: lenet5 has no hidden layers to set');
  const model = applyModel(spec.model, hyper);
  const optimizer = resolveOptimizerConfig({
    kind: train.optimizer,
    lr: train.lr,
    beta1: train.beta1,
    beta2: train.beta2,
    epsilon: train.epsilon,
    momentum: train.momentum,
    rho: train.rho,
    l2: train.l2,
    lr_decay: train.lr_decay,
  });
  return {
    hyper: structuredClone(hyper),
    train,
    model,
    trialSpec: {
      name,
      dataset: spec.dataset.spec,
      label_column: spec.dataset.labelColumn,
      model: formatModelSpec(model),
      optimizer,
      batch: train.batch,
      epochs: train.epochs,
      mode: train.mode,
      seed: train.seed,
      clip_norm: train.clip_norm,
      augment: formatAugment(parseAugment(train.augment)),
      compress: train.compress,
      compress_pull: train.compress_pull,
      overlap: train.overlap,
      init_from: train.init_from,
      freeze: String(train.freeze),
      reinit: train.reinit,
    },
  };
}
