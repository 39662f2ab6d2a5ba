import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { InvalidArgumentError } from '../core/errors';
import { buildGraphModel, paramVariables, setModelParameters } from '../core/layers-model';
import type { ModelSpec, ParamInfo } from '../core/model-spec';
import { graphParams } from '../core/model-graph/params';
import { allNodes } from '../core/model-graph/resolve';
import { graphForward, type ForwardPass } from './graph-forward';
import { elementCount } from '../core/placement';
import type { ComputeBackend, EvalResult, GradientResult, TrialModel } from './compute-backend';
import { checkBatchSize } from './batch-check';
import { DENSE } from './blas/dense-op';
import {
  crossEntropyStats,
  registerSparseSoftmaxCrossEntropy,
  sparseSoftmaxCrossEntropy,
} from './sparse-softmax-xent';

/** Evaluation runs in chunks of at most this many examples, bounding activation memory. */
export const EVAL_CHUNK = 1_000;

/**
 * Makes `backend` tfjs's active backend. tfjs has one global active backend, so a model built on
 * one must switch back before each call when several coexist (only tests do that). For an
 * already-initialized backend tf.setBackend completes synchronously; selectBackend awaited the init.
 */
function activate(backend: string): void {
  if (tf.getBackend() === backend) return;
  void tf.setBackend(backend);
  if (tf.getBackend() !== backend) throw new Error(`tfjs backend ${backend} is not initialized`);
}

class TfjsTrialModel implements TrialModel {
  private readonly model: tfl.LayersModel;
  private readonly params: ParamInfo[];
  /** Every parameter's variable, in params' order. */
  private readonly variables: tf.Variable[];
  /** What gradients() differentiates: no frozen tensor, no BatchNorm moving statistic. */
  private readonly trained: tf.Variable[];
  /** The tensors gradients() returns, in params' order: every one not frozen. */
  private readonly returned: number[];
  private readonly forward: ForwardPass;
  /** Kernels with an L1 or L2 penalty, which enters the loss as Keras's kernel_regularizer. */
  private readonly penalties: Array<{ kernel: tf.Variable; l1: number; l2: number }>;
  private readonly exampleSize: number;
  /** The backend keeps tensors as plain arrays here (cpu, blas): the one-kernel loss runs on it. */
  private readonly sparseLoss: boolean;

  constructor(
    private readonly backend: string,
    spec: ModelSpec,
    private readonly inputShape: readonly number[],
    private readonly numClasses: number,
    frozen: ReadonlySet<string>,
  ) {
    activate(backend);
    const built = buildGraphModel(spec, inputShape, numClasses);
    this.model = built.model;
    this.params = graphParams(built.graph);
    const byName = paramVariables(this.model, this.params);
    this.variables = this.params.map((p) => byName.get(p.name) as tf.Variable);
    this.returned = this.params.flatMap((p, i) => (frozen.has(p.name) ? [] : [i]));
    this.trained = this.returned
      .filter((i) => this.params[i].movingAverage === undefined)
      .map((i) => this.variables[i]);
    this.penalties = [...allNodes(built.graph.nodes)].flatMap((n) =>
      (n.kind === 'dense' || n.kind === 'conv2d') && (n.l1 > 0 || n.l2 > 0)
        ? [{ kernel: byName.get(`${n.name}/kernel`) as tf.Variable, l1: n.l1, l2: n.l2 }]
        : [],
    );
    this.exampleSize = elementCount(inputShape);
    this.sparseLoss = tf.backend() instanceof MathBackendCPU;
    if (this.sparseLoss) registerSparseSoftmaxCrossEntropy(backend);
    // Where the backend has the one-kernel dense and conv ops (blas), those layers use them.
    // Elsewhere the layers' own apply runs: the cpu backend stays tfjs's reference that blas is
    // tested against.
    const fusedOps = tf.getKernel(DENSE, backend) !== undefined;
    this.forward = graphForward(built.graph, built.layers, byName, fusedOps);
  }

  setParameters(params: ReadonlyMap<string, Float32Array>): void {
    activate(this.backend);
    if (!this.writeInPlace(params)) setModelParameters(this.model, params);
  }

  /**
   * The cpu and blas backends keep a variable's values in a plain Float32Array that nothing else
   * holds between steps: copying the new values into it spares a model-sized allocation per
   * batch, which the GC pays for (external memory). False, having written nothing, where that
   * does not hold (another backend, a shared buffer, a parameter missing or misshapen).
   */
  private writeInPlace(params: ReadonlyMap<string, Float32Array>): boolean {
    const backend = tf.backend();
    if (!(backend instanceof MathBackendCPU) || params.size !== this.params.length) return false;
    const targets: Array<[Float32Array, Float32Array]> = [];
    for (const [i, p] of this.params.entries()) {
      const values = params.get(p.name);
      const data = backend.data.get(this.variables[i].dataId);
      if (!values || !data || data.refCount !== 1 || !(data.values instanceof Float32Array))
        return false;
      if (data.values.length !== values.length) return false;
      targets.push([data.values, values]);
    }
    for (const [into, values] of targets) into.set(values);
    return true;
  }

  gradients(
    features: Float32Array,
    labels: Int32Array,
    count: number,
    noiseKey = '',
  ): GradientResult {
    this.checkBatch(features, labels, count);
    activate(this.backend);
    let result: GradientResult | undefined;
    // The result is built inside tidy and handed out through a closure: tidy would walk a
    // returned object's typed arrays element by element looking for tensors.
    tf.tidy(() => {
      const x = this.featureTensor(features, 0, count);
      const y = tf.tensor1d(labels.subarray(0, count), 'int32');
      const stats = new Map<string, Float32Array>();
      const { value, grads } = tf.variableGrads(() => {
        const logits = this.forward(x, { training: true, noiseKey, stats });
        const loss = this.sparseLoss
          ? sparseSoftmaxCrossEntropy(logits, y)
          : (tf.losses.softmaxCrossEntropy(tf.oneHot(y, this.numClasses), logits) as tf.Scalar);
        return this.penalties.reduce((sum, p) => tf.add(sum, penalty(p)), loss) as tf.Scalar;
      }, this.trained);
      const out = new Map<string, Float32Array>();
      // dataSync is a copy on most backends; on cpu and blas it is the gradient tensor's own
      // array, which tidy's disposal hands over (no kernel output is ever reused), so no copy.
      // BatchNorm's moving statistics get the batch's statistics in a gradient's place.
      this.returned.forEach((i) => {
        const p = this.params[i];
        const values =
          p.movingAverage === undefined
            ? (grads[this.variables[i].name].dataSync() as Float32Array)
            : stats.get(p.name);
        if (!values) throw new Error(`the forward pass gave no statistics for ${p.name}`);
        out.set(p.name, values);
      });
      result = { loss: value.dataSync()[0], grads: out };
    });
    return result as GradientResult;
  }

  evaluate(features: Float32Array, labels: Int32Array, count: number): EvalResult {
    this.checkBatch(features, labels, count);
    activate(this.backend);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < count; start += EVAL_CHUNK) {
      const n = Math.min(EVAL_CHUNK, count - start);
      // The loss and hits come from the logits read back: a chunk's logits are small (n × classes).
      let logits: tf.TypedArray = new Float32Array(0);
      tf.tidy(() => {
        const x = this.featureTensor(features, start, n);
        logits = this.forward(x, { training: false }).dataSync();
      });
      const stats = crossEntropyStats(
        logits,
        labels.subarray(start, start + n),
        n,
        this.numClasses,
      );
      lossSum += stats.lossSum;
      correct += stats.correct;
    }
    // An empty set has no mean; zeros keep the result JSON-safe and `examples` says why.
    return count === 0
      ? { loss: 0, accuracy: 0, examples: 0 }
      : { loss: lossSum / count, accuracy: correct / count, examples: count };
  }

  dispose(): void {
    this.model.dispose();
  }

  /** Features [n, ...inputShape] of examples start..start+n. */
  private featureTensor(features: Float32Array, start: number, n: number): tf.Tensor {
    const size = this.exampleSize;
    return tf.tensor(
      features.subarray(start * size, (start + n) * size),
      [n, ...this.inputShape],
      'float32',
    );
  }

  private checkBatch(features: Float32Array, labels: Int32Array, count: number): void {
    checkBatchSize(features, labels, count, this.exampleSize);
    for (let i = 0; i < count; i++) {
      // oneHot would silently turn an out-of-range label into an all-zero row.
      if (labels[i] < 0 || labels[i] >= this.numClasses) {
        throw new InvalidArgumentError(
          `label ${labels[i]} of example ${i} is not a class in 0..${this.numClasses - 1}`,
        );
      }
    }
  }
}

/** l1·Σ|W| + l2·ΣW². */
function penalty({ kernel, l1, l2 }: { kernel: tf.Variable; l1: number; l2: number }): tf.Tensor {
  const terms: tf.Tensor[] = [];
  if (l1 > 0) terms.push(tf.mul(l1, tf.sum(tf.abs(kernel))));
  if (l2 > 0) terms.push(tf.mul(l2, tf.sum(tf.square(kernel))));
  return tf.addN(terms);
}

/** A ComputeBackend on one initialized tfjs backend ('cpu', 'wasm', 'tensorflow'). */
export class TfjsComputeBackend implements ComputeBackend {
  /**
   * @param tfjsBackend the tfjs backend name, already initialized (tf.setBackend awaited).
   * @param name the name reported in logs and metrics. Defaults to `tfjsBackend`.
   */
  constructor(
    readonly tfjsBackend: string,
    readonly name: string = tfjsBackend,
  ) {}

  createModel(
    spec: ModelSpec,
    inputShape: readonly number[],
    numClasses: number,
    frozen: ReadonlySet<string> = new Set(),
  ): TrialModel {
    return new TfjsTrialModel(this.tfjsBackend, spec, inputShape, numClasses, frozen);
  }
}
