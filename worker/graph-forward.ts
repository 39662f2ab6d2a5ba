import * as tf from '@tensorflow/tfjs-core';
import type { GraphLayers } from '../core/layers-model';
import type { GraphNode, ResolvedGraph } from '../core/model-graph/resolve';
import { seededBits } from '../core/seeded-random';
import { dense } from './blas/dense-op';
import { conv2d } from './blas/conv-op';
import { batchNormTrain } from './blas/batch-norm-op';

/** How one forward pass runs. */
export interface ForwardMode {
  /** Dropout on, BatchNorm on the batch's own statistics. */
  training: boolean;
  /** Training: what the dropout masks are drawn from, so a batch's masks are the same on any worker. */
  noiseKey?: string;
  /** Training: receives each BatchNorm layer's batch mean and variance, by their moving tensors' names. */
  stats?: Map<string, Float32Array>;
}

export type ForwardPass = (x: tf.Tensor, mode: ForwardMode) => tf.Tensor;

/**
 * The model's forward pass, run layer by layer over the resolved graph rather than through
 * LayersModel.apply, for what a parameter server needs of training that tfjs's layers do their
 * own way: dropout masks seeded per batch (tfjs draws them from a global generator), BatchNorm
 * statistics handed out to be pushed (tfjs updates its moving averages in place, on one
 * worker), and, where the backend has them (blas), the one-kernel dense and conv ops. Every
 * weight is the tfjs layer's own variable, so gradients land on them as usual.
 */
export function graphForward(
  graph: ResolvedGraph,
  layers: GraphLayers,
  variables: ReadonlyMap<string, tf.Variable>,
  fusedOps: boolean,
): ForwardPass {
  const variable = (name: string): tf.Variable => {
    const v = variables.get(name);
    if (!v) throw new Error(`no variable ${name}`);
    return v;
  };
  const apply = (name: string, h: tf.Tensor): tf.Tensor => {
    const layer = layers.get(name);
    if (!layer) throw new Error(`no tfjs layer ${name}`);
    return layer.apply(h) as tf.Tensor;
  };

  const step = (node: GraphNode, h: tf.Tensor, mode: ForwardMode): tf.Tensor => {
    switch (node.kind) {
      case 'dense': {
        const linear = node.activation === 'linear';
        if (!fusedOps || h.rank !== 2 || !(linear || node.activation === 'relu'))
          return apply(node.name, h);
        return dense(h, variable(`${node.name}/kernel`), variable(`${node.name}/bias`), !linear);
      }
      case 'conv2d': {
        const linear = node.activation === 'linear';
        if (!fusedOps || !(linear || node.activation === 'relu')) return apply(node.name, h);
        return conv2d(h, variable(`${node.name}/kernel`), variable(`${node.name}/bias`), {
          strides: node.stride,
          pad: node.padding,
          relu: !linear,
        });
      }
      case 'dropout':
        return mode.training && node.rate > 0 ? dropout(h, node.rate, mode, node.name) : h;
      case 'batch_norm':
        return batchNorm(h, node, mode, variable, fusedOps);
      case 'residual': {
        const body = node.body.reduce((t, n) => step(n, t, mode), h);
        const shortcut = node.projection ? step(node.projection, h, mode) : h;
        return apply(`${node.name}_out`, tf.add(body, shortcut));
      }
      default:
        return apply(node.name, h);
    }
  };
  return (x, mode) => graph.nodes.reduce((h, node) => step(node, h, mode), x);
}

/** Inverted dropout: kept units scaled by 1/(1 - rate), so evaluation needs no rescaling. */
function dropout(h: tf.Tensor, rate: number, mode: ForwardMode, layer: string): tf.Tensor {
  const bits = seededBits(`dropout:${mode.noiseKey ?? ''}:${layer}`, new Uint32Array(h.size));
  const mask = new Float32Array(h.size);
  const scale = 1 / (1 - rate);
  // A unit drops where its 32-bit draw falls below rate · 2^32.
  const below = rate * 2 ** 32;
  for (let i = 0; i < mask.length; i++) mask[i] = bits[i] < below ? 0 : scale;
  return tf.mul(h, tf.tensor(mask, h.shape, 'float32'));
}

/**
 * Training: normalizes by the batch's mean and (biased) variance over every axis but the
 * channels', as tfjs's BatchNormalization does, and hands both out; the shards fold them into
 * the moving averages. Evaluation: normalizes by the moving averages.
 */
function batchNorm(
  h: tf.Tensor,
  node: Extract<GraphNode, { kind: 'batch_norm' }>,
  mode: ForwardMode,
  variable: (name: string) => tf.Variable,
  fused: boolean,
): tf.Tensor {
  const v = (w: string) => variable(`${node.name}/${w}`);
  if (!mode.training)
    return tf.batchNorm(
      h,
      v('moving_mean'),
      v('moving_variance'),
      v('beta'),
      v('gamma'),
      node.epsilon,
    );
  const handOut = (mean: tf.Tensor, variance: tf.Tensor) => {
    mode.stats?.set(`${node.name}/moving_mean`, (mean.dataSync() as Float32Array).slice());
    mode.stats?.set(`${node.name}/moving_variance`, (variance.dataSync() as Float32Array).slice());
  };
  if (fused) {
    const [y, mean, variance] = batchNormTrain(h, v('gamma'), v('beta'), node.epsilon);
    handOut(mean, variance);
    return y;
  }
  const { mean, variance } = tf.moments(
    h,
    Array.from({ length: h.rank - 1 }, (_, i) => i),
  );
  handOut(mean, variance);
  return tf.batchNorm(h, mean, variance, v('beta'), v('gamma'), node.epsilon);
}
