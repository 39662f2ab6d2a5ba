import type { LayerSpec, ModelGraph } from './layer-spec';

/**
 * The short forms as layer graphs. mlp and lenet5 resolve to the very layers, names and
 * initializers they always had, so a trial's seed gives the same initial values as before.
 */

/** ReLU dense layers, then the head. */
export function mlpGraph(hidden: readonly number[]): ModelGraph {
  return { layers: hidden.map((units): LayerSpec => ({ type: 'dense', units })) };
}

/** LeNet-5 with ReLU and average pooling, for 28x28 images. */
export function lenet5Graph(): ModelGraph {
  return {
    layers: [
      { type: 'conv2d', filters: 6, kernel: 5, padding: 'same' },
      { type: 'avg_pool', size: 2 },
      { type: 'conv2d', filters: 16, kernel: 5, padding: 'valid' },
      { type: 'avg_pool', size: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 120 },
      { type: 'dense', units: 84 },
    ],
  };
}

const conv3 = (filters: number, stride = 1, activation: 'relu' | 'linear' = 'relu'): LayerSpec => ({
  type: 'conv2d',
  filters,
  kernel: 3,
  stride,
  padding: 'same',
  activation,
});

/**
 * ResNet-(6N+2) of He et al.'s CIFAR experiments: a 3x3 convolution, then three stages of N
 * basic blocks (16, 32 and 64 filters; the second and third start with stride 2, their
 * shortcut a 1x1 projection), global average pooling and the head. BatchNorm after every
 * convolution; for 28x28 or 32x32 images.
 */
export function resnetGraph(blocks: number): ModelGraph {
  const stage = (filters: number, firstStride: number): LayerSpec[] => {
    const block = (stride: number): LayerSpec => ({
      type: 'residual',
      layers: [
        conv3(filters, stride, 'linear'),
        { type: 'batch_norm' },
        { type: 'activation', activation: 'relu' },
        conv3(filters, 1, 'linear'),
        { type: 'batch_norm' },
      ],
    });
    const rest: LayerSpec[] =
      blocks > 1
        ? [{ ...(block(1) as Extract<LayerSpec, { type: 'residual' }>), repeat: blocks - 1 }]
        : [];
    return [block(firstStride), ...rest];
  };
  return {
    layers: [
      conv3(16, 1, 'linear'),
      { type: 'batch_norm' },
      { type: 'activation', activation: 'relu' },
      ...stage(16, 1),
      ...stage(32, 2),
      ...stage(64, 2),
      { type: 'global_avg_pool' },
    ],
  };
}

/** A small VGG: two stages of two 3x3 convolutions and max pooling, a dense layer with dropout. */
export function vggSmallGraph(): ModelGraph {
  return {
    layers: [
      conv3(32),
      conv3(32),
      { type: 'max_pool', size: 2 },
      conv3(64),
      conv3(64),
      { type: 'max_pool', size: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 256 },
      { type: 'dropout', rate: 0.5 },
    ],
  };
}

/** The presets by their short form's prefix, for messages. */
export const PRESET_FORMS = ['mlp:UNITS[,UNITS...]', 'lenet5', 'resnet:N', 'vgg:small'] as const;
