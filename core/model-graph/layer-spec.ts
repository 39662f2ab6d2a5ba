import { z } from 'zod';
import { strict } from '../spec-file';

/**
 * The layer-graph model spec as a user writes it (JSON or YAML): an optional input shape and a
 * list of layers, Keras's Sequential with residual blocks. Field names follow the notes'
 * vocabulary (`kernel`, `stride`, `rate`), not tfjs's (`kernelSize`, `strides`).
 */

export const ACTIVATIONS = ['relu', 'tanh', 'sigmoid', 'linear', 'softmax'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** Initializers a layer may name; shards draw the same values from a trial's seed. */
export const KERNEL_INITS = ['he_normal', 'glorot_uniform', 'zeros'] as const;
export type KernelInit = (typeof KERNEL_INITS)[number];

export const LAYER_TYPES = [
  'dense',
  'conv2d',
  'max_pool',
  'avg_pool',
  'global_avg_pool',
  'flatten',
  'dropout',
  'batch_norm',
  'activation',
  'residual',
] as const;
export type LayerType = (typeof LAYER_TYPES)[number];

/** A size along height and width: one number for both, or [height, width]. */
export type Size2 = number | [number, number];

interface Named {
  /** The layer's name, the prefix of its parameters' names; generated (dense0, conv1) if absent. */
  name?: string;
}

interface Weighted extends Named {
  /** Defaults to relu. */
  activation?: Activation;
  /** Penalties on the kernel added to the loss, as Keras's kernel_regularizer. */
  l1?: number;
  l2?: number;
  /** Defaults by activation: he_normal for relu, glorot_uniform otherwise. */
  init?: KernelInit;
}

export interface DenseSpec extends Weighted {
  type: 'dense';
  units: number;
}

export interface Conv2dSpec extends Weighted {
  type: 'conv2d';
  filters: number;
  kernel: Size2;
  /** Defaults to 1. */
  stride?: Size2;
  /** Defaults to valid, as in Keras. */
  padding?: 'same' | 'valid';
}

export interface PoolSpec extends Named {
  type: 'max_pool' | 'avg_pool';
  size: Size2;
  /** Defaults to the size. */
  stride?: Size2;
  padding?: 'same' | 'valid';
}

export interface DropoutSpec extends Named {
  type: 'dropout';
  /** The fraction of units dropped, in [0, 1): keep probability 1 - rate. */
  rate: number;
}

export interface BatchNormSpec extends Named {
  type: 'batch_norm';
  /** Of the moving averages; defaults to 0.99 as in tfjs and Keras. */
  momentum?: number;
  /** Defaults to 1e-3 as in tfjs and Keras. */
  epsilon?: number;
}

export interface ActivationSpec extends Named {
  type: 'activation';
  activation: Activation;
}

export interface ResidualSpec extends Named {
  type: 'residual';
  /** The block; its output is added to its input, projected by a 1x1 convolution where shapes differ. */
  layers: LayerSpec[];
  /** After the addition; defaults to relu, as in ResNet. */
  activation?: Activation;
  /** How many such blocks in a row; defaults to 1. */
  repeat?: number;
}

export type LayerSpec =
  | DenseSpec
  | Conv2dSpec
  | PoolSpec
  | DropoutSpec
  | BatchNormSpec
  | ActivationSpec
  | ResidualSpec
  | (Named & { type: 'global_avg_pool' | 'flatten' });

export interface ModelGraph {
  /** The shape of one example, e.g. [28, 28, 1]; when given, a data set of another shape is refused. */
  input?: number[];
  layers: LayerSpec[];
}

const positiveInt = (max: number) =>
  z
    .number()
    .refine((v) => Number.isInteger(v) && v >= 1 && v <= max, `expected an integer in 1..${max}`);

const size2 = z.union([positiveInt(4096), z.tuple([positiveInt(4096), positiveInt(4096)])], {
  error: 'expected a positive integer or [height, width]',
});

const penalty = z.number().refine((v) => Number.isFinite(v) && v >= 0, 'expected a number >= 0');

const name = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'expected a name of letters, digits and _');

const activation = z.enum(ACTIVATIONS);

const weighted = {
  name: name.optional(),
  activation: activation.optional(),
  l1: penalty.optional(),
  l2: penalty.optional(),
  init: z.enum(KERNEL_INITS).optional(),
};

const pool = (type: 'max_pool' | 'avg_pool') =>
  strict({
    type: z.literal(type),
    name: name.optional(),
    size: size2,
    stride: size2.optional(),
    padding: z.enum(['same', 'valid']).optional(),
  });

export const layerSchema: z.ZodType<LayerSpec> = z.lazy(() =>
  z.discriminatedUnion('type', [
    strict({ type: z.literal('dense'), units: positiveInt(1 << 20), ...weighted }),
    strict({
      type: z.literal('conv2d'),
      filters: positiveInt(1 << 16),
      kernel: size2,
      stride: size2.optional(),
      padding: z.enum(['same', 'valid']).optional(),
      ...weighted,
    }),
    pool('max_pool'),
    pool('avg_pool'),
    strict({ type: z.literal('global_avg_pool'), name: name.optional() }),
    strict({ type: z.literal('flatten'), name: name.optional() }),
    strict({
      type: z.literal('dropout'),
      name: name.optional(),
      rate: z.number().refine((v) => v >= 0 && v < 1, 'expected a rate in [0, 1)'),
    }),
    strict({
      type: z.literal('batch_norm'),
      name: name.optional(),
      momentum: z
        .number()
        .refine((v) => v >= 0 && v < 1, 'expected a momentum in [0, 1)')
        .optional(),
      epsilon: z
        .number()
        .refine((v) => v > 0 && v < 1, 'expected an epsilon in (0, 1)')
        .optional(),
    }),
    strict({ type: z.literal('activation'), name: name.optional(), activation }),
    strict({
      type: z.literal('residual'),
      name: name.optional(),
      layers: z.array(layerSchema).min(1, 'expected a non-empty list of layers'),
      activation: activation.optional(),
      repeat: positiveInt(1000).optional(),
    }),
  ]),
);

export const modelGraphSchema = strict({
  input: z
    .array(positiveInt(1 << 20))
    .min(1)
    .max(3)
    .optional(),
  layers: z.array(layerSchema).min(1, 'expected a non-empty list of layers'),
});
