import type { Activation, KernelInit, LayerSpec, ModelGraph, Size2 } from './layer-spec';

/**
 * A model graph made concrete for one data set: every layer named, every default filled in,
 * every shape known, the classifier head in place. The parameter list, the tfjs model, the
 * worker's forward pass and the export are all read off these nodes, so they cannot disagree.
 */

/** Where a layer is in the spec, as a path into it (`['layers', 3, 'layers', 0]`). */
export type SpecPath = ReadonlyArray<string | number>;

/** A spec that does not fit its data; `path` says where, for a file:line:col message. */
export class GraphProblem extends Error {
  constructor(
    readonly path: SpecPath,
    message: string,
  ) {
    super(message);
  }
}

/** [height, width, channels] of an image, or [units] of a vector. */
export type Shape = readonly number[];

interface NodeBase {
  name: string;
  path: SpecPath;
  inShape: Shape;
  outShape: Shape;
}

export interface DenseNode extends NodeBase {
  kind: 'dense';
  units: number;
  activation: Activation;
  init: KernelInit;
  l1: number;
  l2: number;
}

export interface ConvNode extends NodeBase {
  kind: 'conv2d';
  filters: number;
  kernel: [number, number];
  stride: [number, number];
  padding: 'same' | 'valid';
  activation: Activation;
  init: KernelInit;
  l1: number;
  l2: number;
}

export interface PoolNode extends NodeBase {
  kind: 'pool';
  op: 'max' | 'avg';
  size: [number, number];
  stride: [number, number];
  padding: 'same' | 'valid';
}

export interface BatchNormNode extends NodeBase {
  kind: 'batch_norm';
  momentum: number;
  epsilon: number;
}

export interface ResidualNode extends NodeBase {
  kind: 'residual';
  body: GraphNode[];
  /** The 1x1 convolution (or, on vectors, the dense layer) that shapes the input like the body's output. */
  projection?: ConvNode | DenseNode;
  /** Named `${name}_out`, applied after the addition. */
  activation: Activation;
}

export type GraphNode =
  | DenseNode
  | ConvNode
  | PoolNode
  | BatchNormNode
  | ResidualNode
  | (NodeBase & { kind: 'dropout'; rate: number })
  | (NodeBase & { kind: 'activation'; activation: Activation })
  | (NodeBase & { kind: 'flatten' | 'global_avg_pool' });

export interface ResolvedGraph {
  inputShape: Shape;
  nodes: GraphNode[];
  /** The last node: a linear dense layer of one unit per class, whose outputs are the logits. */
  head: DenseNode;
}

const pair = (s: Size2): [number, number] => (typeof s === 'number' ? [s, s] : [s[0], s[1]]);
const shapeText = (s: Shape): string => s.join('x');

/**
 * Names layers as the short forms always have (dense0, conv1, pool0, flatten), counting per
 * kind within a block; `used` holds every name in the model, the user's own included.
 */
class LayerNamer {
  private readonly counts = new Map<string, number>();
  constructor(
    readonly used: Set<string>,
    private readonly prefix = '',
  ) {}

  next(kind: string, first?: string): string {
    for (;;) {
      const n = this.counts.get(kind) ?? 0;
      this.counts.set(kind, n + 1);
      const name = `${this.prefix}${n === 0 && first ? first : `${kind}${n}`}`;
      if (!this.used.has(name)) return name;
    }
  }

  /** Names for the layers of block `name`: `${name}_conv0`, ... */
  nested(name: string): LayerNamer {
    return new LayerNamer(this.used, `${name}_`);
  }
}

const NAME_KINDS: Record<LayerSpec['type'], [string, string?]> = {
  dense: ['dense'],
  conv2d: ['conv'],
  max_pool: ['pool'],
  avg_pool: ['pool'],
  global_avg_pool: ['gap'],
  flatten: ['flatten', 'flatten'],
  dropout: ['dropout'],
  batch_norm: ['bn'],
  activation: ['act'],
  residual: ['res'],
};

function spatialOut(
  size: number,
  k: number,
  s: number,
  padding: 'same' | 'valid',
  path: SpecPath,
  what: string,
  input: Shape,
): number {
  if (padding === 'same') return Math.ceil(size / s);
  if (k > size)
    throw new GraphProblem(
      path,
      `${what} is larger than its ${shapeText(input)} input (use padding: same, or a smaller ${what.split(' ')[0]})`,
    );
  return Math.ceil((size - k + 1) / s);
}

function needImage(input: Shape, path: SpecPath, type: string): void {
  if (input.length !== 3)
    throw new GraphProblem(
      path,
      `${type} needs an image input (height x width x channels), got ${shapeText(input)}; the data set's examples are vectors or were flattened`,
    );
}

const defaultInit = (a: Activation): KernelInit => (a === 'relu' ? 'he_normal' : 'glorot_uniform');

/** Resolves a list of layers from `input`; `auto` flattens (named by `namer`) before dense layers. */
function resolveLayers(
  layers: readonly LayerSpec[],
  input: Shape,
  base: SpecPath,
  namer: LayerNamer,
): GraphNode[] {
  const usedNames = namer.used;
  const nodes: GraphNode[] = [];
  let shape = input;
  const claim = (spec: LayerSpec, path: SpecPath): string => {
    const [kind, first] = NAME_KINDS[spec.type];
    const name = spec.name ?? namer.next(kind, first);
    if (usedNames.has(name))
      throw new GraphProblem([...path, 'name'], `name ${name} is used twice`);
    usedNames.add(name);
    return name;
  };
  layers.forEach((spec, i) => {
    const path = [...base, i];
    const repeat = spec.type === 'residual' ? (spec.repeat ?? 1) : 1;
    for (let r = 0; r < repeat; r++) {
      if (spec.type === 'dense' && shape.length > 1) {
        const name = namer.next('flatten', 'flatten');
        usedNames.add(name);
        const out = [shape.reduce((a, b) => a * b, 1)];
        nodes.push({ kind: 'flatten', name, path, inShape: shape, outShape: out });
        shape = out;
      }
      const node = resolveLayer(
        repeat > 1 && spec.name ? { ...spec, name: `${spec.name}${r}` } : spec,
        shape,
        path,
        claim,
        namer,
      );
      nodes.push(node);
      shape = node.outShape;
    }
  });
  return nodes;
}

function resolveLayer(
  spec: LayerSpec,
  input: Shape,
  path: SpecPath,
  claim: (spec: LayerSpec, path: SpecPath) => string,
  namer: LayerNamer,
): GraphNode {
  const name = claim(spec, path);
  const at = { name, path, inShape: input };
  switch (spec.type) {
    case 'dense': {
      const activation = spec.activation ?? 'relu';
      return {
        ...at,
        kind: 'dense',
        outShape: [spec.units],
        units: spec.units,
        activation,
        init: spec.init ?? defaultInit(activation),
        l1: spec.l1 ?? 0,
        l2: spec.l2 ?? 0,
      };
    }
    case 'conv2d': {
      needImage(input, path, 'conv2d');
      const kernel = pair(spec.kernel);
      const stride = pair(spec.stride ?? 1);
      const padding = spec.padding ?? 'valid';
      const activation = spec.activation ?? 'relu';
      const kpath = [...path, 'kernel'];
      const what = `kernel ${shapeText(kernel)}`;
      return {
        ...at,
        kind: 'conv2d',
        outShape: [
          spatialOut(input[0], kernel[0], stride[0], padding, kpath, what, input),
          spatialOut(input[1], kernel[1], stride[1], padding, kpath, what, input),
          spec.filters,
        ],
        filters: spec.filters,
        kernel,
        stride,
        padding,
        activation,
        init: spec.init ?? defaultInit(activation),
        l1: spec.l1 ?? 0,
        l2: spec.l2 ?? 0,
      };
    }
    case 'max_pool':
    case 'avg_pool': {
      needImage(input, path, spec.type);
      const size = pair(spec.size);
      const stride = pair(spec.stride ?? spec.size);
      const padding = spec.padding ?? 'valid';
      const spath = [...path, 'size'];
      const what = `size ${shapeText(size)}`;
      return {
        ...at,
        kind: 'pool',
        op: spec.type === 'max_pool' ? 'max' : 'avg',
        outShape: [
          spatialOut(input[0], size[0], stride[0], padding, spath, what, input),
          spatialOut(input[1], size[1], stride[1], padding, spath, what, input),
          input[2],
        ],
        size,
        stride,
        padding,
      };
    }
    case 'global_avg_pool':
      needImage(input, path, spec.type);
      return { ...at, kind: 'global_avg_pool', outShape: [input[2]] };
    case 'flatten':
      return { ...at, kind: 'flatten', outShape: [input.reduce((a, b) => a * b, 1)] };
    case 'dropout':
      return { ...at, kind: 'dropout', outShape: input, rate: spec.rate };
    case 'activation':
      return { ...at, kind: 'activation', outShape: input, activation: spec.activation };
    case 'batch_norm':
      return {
        ...at,
        kind: 'batch_norm',
        outShape: input,
        momentum: spec.momentum ?? 0.99,
        epsilon: spec.epsilon ?? 1e-3,
      };
    case 'residual': {
      const inner = namer.nested(name);
      const body = resolveLayers(spec.layers, input, [...path, 'layers'], inner);
      const out = body[body.length - 1].outShape;
      const node: ResidualNode = {
        ...at,
        kind: 'residual',
        outShape: out,
        body,
        activation: spec.activation ?? 'relu',
      };
      if (!sameShape(input, out)) node.projection = projection(`${name}_proj`, input, out, path);
      namer.used.add(`${name}_out`);
      return node;
    }
  }
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The linear map from a residual block's input to its output's shape, as ResNet's shortcut. */
function projection(name: string, input: Shape, out: Shape, path: SpecPath): ConvNode | DenseNode {
  const base = { name, path, inShape: input, outShape: out, l1: 0, l2: 0 };
  if (input.length === 1 && out.length === 1)
    return { ...base, kind: 'dense', units: out[0], activation: 'linear', init: 'glorot_uniform' };
  const strides =
    input.length === 3 && out.length === 3 ? [0, 1].map((d) => input[d] / out[d]) : [];
  const fits =
    strides.length === 2 &&
    strides.every((s, d) => s >= 1 && Math.ceil(input[d] / Math.ceil(s)) === out[d]);
  if (!fits)
    throw new GraphProblem(
      path,
      `the block's output ${shapeText(out)} cannot be projected from its input ${shapeText(input)} by a 1x1 convolution (a block may shrink height and width by a whole stride, not grow them or flatten)`,
    );
  const stride: [number, number] = [Math.ceil(strides[0]), Math.ceil(strides[1])];
  return {
    ...base,
    kind: 'conv2d',
    filters: out[2],
    kernel: [1, 1],
    stride,
    padding: 'same',
    activation: 'linear',
    init: 'glorot_uniform',
  };
}

/**
 * Resolves `graph` for examples of `inputShape` and `numClasses` classes. A last dense layer
 * with softmax is the head (its units must be the class count); otherwise a linear dense head
 * is appended, its softmax fused into the loss as for the mlp short form.
 */
export function resolveGraph(
  graph: ModelGraph,
  inputShape: Shape,
  numClasses: number,
): ResolvedGraph {
  if (graph.input && !sameShape(graph.input, inputShape))
    throw new GraphProblem(
      ['input'],
      `the model takes ${shapeText(graph.input)} examples; the data set's are ${shapeText(inputShape)}`,
    );
  const layers = [...graph.layers];
  const last = layers[layers.length - 1];
  const explicitHead = last?.type === 'dense' && last.activation === 'softmax';
  if (explicitHead && last.units !== numClasses)
    throw new GraphProblem(
      ['layers', layers.length - 1, 'units'],
      `the softmax layer has ${last.units} units; the data set has ${numClasses} classes`,
    );
  checkSoftmax(explicitHead ? layers.slice(0, -1) : layers, ['layers']);
  const withHead: LayerSpec[] = explicitHead
    ? layers
    : [
        ...layers,
        { type: 'dense', units: numClasses, activation: 'linear', init: 'glorot_uniform' },
      ];
  const nodes = resolveLayers(withHead, inputShape, ['layers'], new LayerNamer(new Set()));
  // The head's softmax is the loss's: its outputs are logits, in training and in the export.
  const head: DenseNode = {
    ...(nodes[nodes.length - 1] as DenseNode),
    activation: 'linear',
    init: (explicitHead && last.init) || 'glorot_uniform',
  };
  nodes[nodes.length - 1] = head;
  return { inputShape, nodes, head };
}

function checkSoftmax(layers: readonly LayerSpec[], base: SpecPath): void {
  layers.forEach((l, i) => {
    if ('activation' in l && l.activation === 'softmax')
      throw new GraphProblem(
        [...base, i, 'activation'],
        'softmax goes on the last layer only, a dense layer of one unit per class (activation: softmax)',
      );
    if (l.type === 'residual') checkSoftmax(l.layers, [...base, i, 'layers']);
  });
}

/** Every node in order, residual blocks' bodies and projections included. */
export function* allNodes(nodes: readonly GraphNode[]): Generator<GraphNode> {
  for (const node of nodes) {
    yield node;
    if (node.kind === 'residual') {
      yield* allNodes(node.body);
      if (node.projection) yield node.projection;
    }
  }
}
