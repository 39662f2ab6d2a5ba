import type { TensorShape } from '../placement';
import { allNodes, type ConvNode, type DenseNode, type ResolvedGraph } from './resolve';

/** A tensor's initializer: the kernel ones of layer-spec, and constants for BatchNorm's. */
export type ParamInit = 'he_normal' | 'glorot_uniform' | 'zeros' | 'ones';

/** A tensor of a model and how it starts. */
export interface ParamInfo extends TensorShape {
  init: ParamInit;
  fanIn: number;
  fanOut: number;
  /**
   * Set for BatchNorm's moving mean and variance: not trained but averaged, with this momentum,
   * over the batch statistics pushed in the tensor's place of a gradient.
   */
  movingAverage?: number;
}

function weights(node: DenseNode | ConvNode): ParamInfo[] {
  const dense = node.kind === 'dense';
  const cin = node.inShape[node.inShape.length - 1];
  const area = dense ? 1 : node.kernel[0] * node.kernel[1];
  const cout = dense ? node.units : node.filters;
  const fan = { fanIn: area * cin, fanOut: area * cout };
  return [
    {
      name: `${node.name}/kernel`,
      shape: dense ? [cin, cout] : [node.kernel[0], node.kernel[1], cin, cout],
      init: node.init,
      ...fan,
    },
    { name: `${node.name}/bias`, shape: [cout], init: 'zeros', ...fan },
  ];
}

/**
 * The model's tensors, layer by layer (a residual block's body, then its projection): kernel and
 * bias; BatchNorm's gamma, beta, moving mean and moving variance. Names are tfjs's
 * (`LAYER/kernel`), so a LayersModel's weights carry them.
 */
export function graphParams(graph: ResolvedGraph): ParamInfo[] {
  const params: ParamInfo[] = [];
  for (const node of allNodes(graph.nodes)) {
    if (node.kind === 'dense' || node.kind === 'conv2d') params.push(...weights(node));
    if (node.kind === 'batch_norm') {
      const c = node.inShape[node.inShape.length - 1];
      const vector = (name: string, init: ParamInit, movingAverage?: number): ParamInfo => ({
        name: `${node.name}/${name}`,
        shape: [c],
        init,
        fanIn: c,
        fanOut: c,
        ...(movingAverage === undefined ? {} : { movingAverage }),
      });
      params.push(
        vector('gamma', 'ones'),
        vector('beta', 'zeros'),
        vector('moving_mean', 'zeros', node.momentum),
        vector('moving_variance', 'ones', node.momentum),
      );
    }
  }
  return params;
}
