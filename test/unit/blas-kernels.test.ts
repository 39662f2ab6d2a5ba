import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers tfjs's gradients, which tf.grad needs
import { nativeAddonAvailable } from '../../core/native/addon';
import { BLAS_BACKEND, registerBlasBackend } from '../../worker/blas/backend';
import { relativeError } from '../helpers/numeric';
import { dense } from '../../worker/blas/dense-op';
import { conv2d } from '../../worker/blas/conv-op';

const skip = nativeAddonAvailable()
  ? false
  : 'the native addon is not built (npm run build:native)';
tf.enableProdMode();

/** Deterministic values in [-1, 1) for a tensor of `size` elements. */
const data = (size: number, seed: number): Float32Array =>
  Float32Array.from({ length: size }, (_, i) => Math.sin(seed * 7.31 + i * 1.37) * 0.999);

const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

/** Runs `f` on cpu and on blas and returns each output's values, cpu's first. */
function onBoth(f: () => tf.Tensor | tf.Tensor[]): Array<[Float32Array, Float32Array, number[]]> {
  const run = (backend: string) => {
    void tf.setBackend(backend);
    assert.equal(tf.getBackend(), backend);
    return tf.tidy(() => {
      const out = f();
      return (Array.isArray(out) ? out : [out]).map(
        (t) => [new Float32Array(t.dataSync()), t.shape] as const,
      );
    });
  };
  const cpu = run('cpu');
  const blas = run(BLAS_BACKEND);
  return cpu.map(([values, shape], i) => {
    assert.deepEqual(blas[i][1], shape, 'output shapes differ');
    return [values, blas[i][0], shape];
  });
}

function assertAgree(f: () => tf.Tensor | tf.Tensor[], what: string, tolerance = 1e-4): void {
  for (const [cpu, blas] of onBoth(f)) {
    const err = relativeError(cpu, blas);
    assert.ok(err <= tolerance, `${what}: relative error ${err}`);
  }
}

before(async () => {
  if (skip) return;
  registerBlasBackend(1);
  await tf.ready();
  await tf.setBackend(BLAS_BACKEND);
});

const RUNS = { numRuns: 60, seed: 7 };

describe('blas kernels agree with tfjs cpu (1e-4 relative)', { skip }, () => {
  it('registers its own kernels for the heavy and hot ops, and cpu for the rest', () => {
    for (const name of [
      tf.BatchMatMul,
      tf._FusedMatMul,
      tf.Conv2D,
      tf.FusedConv2D,
      tf.Add,
      tf.Sum,
    ]) {
      const own = tf.getKernel(name, BLAS_BACKEND)?.kernelFunc;
      assert.ok(own && own !== tf.getKernel(name, 'cpu')?.kernelFunc, name);
    }
    // The rest are cpu's, behind a wrapper that keeps their inputs out of the array pool;
    // Reshape only shares its input's data and runs as it is.
    assert.ok(tf.getKernel(tf.Exp, BLAS_BACKEND));
    assert.equal(
      tf.getKernel(tf.Reshape, BLAS_BACKEND)?.kernelFunc,
      tf.getKernel(tf.Reshape, 'cpu')?.kernelFunc,
    );
  });

  it('reuses disposed outputs, but never an array read out or seen by a cpu kernel', () => {
    void tf.setBackend(BLAS_BACKEND);
    const n = 1 << 15;
    const a = tf.tensor1d(data(n, 1));
    const b = tf.tensor1d(data(n, 2));
    const arrayOf = (t: tf.Tensor) =>
      (tf.backend() as unknown as { data: Map<unknown, { values: unknown }> }).data.get(t.dataId)
        ?.values;
    const first = tf.add(a, b);
    const firstArray = arrayOf(first);
    first.dispose();
    const second = tf.mul(a, b);
    assert.equal(arrayOf(second), firstArray, 'a disposed output comes back to the next kernel');
    const read = second.dataSync();
    const kept = Float32Array.from(read);
    second.dispose();
    const third = tf.sub(a, b);
    assert.notEqual(arrayOf(third), read, 'an array read out is the reader’s');
    assert.deepEqual(read, kept, 'and keeps its values');
    const sliced = tf.slice(third, [0], [n / 2]);
    const slicedValues = Float32Array.from(sliced.dataSync());
    third.dispose();
    const fourth = tf.add(b, b);
    assert.deepEqual(sliced.dataSync(), slicedValues, 'a view a cpu kernel made stays valid');
    for (const t of [a, b, sliced, fourth]) t.dispose();
  });

  it('BatchMatMul: random shapes, transposes and (broadcast) batch dims', () => {
    const batchDims = fc.oneof(
      fc.constant<number[]>([]),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }),
    );
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 40 }),
          n: fc.integer({ min: 1, max: 40 }),
          k: fc.integer({ min: 1, max: 70 }),
          tA: fc.boolean(),
          tB: fc.boolean(),
          outer: batchDims,
          broadcast: fc.constantFrom('none', 'a', 'b'),
          seed: fc.integer({ min: 1, max: 1000 }),
        }),
        ({ m, n, k, tA, tB, outer, broadcast, seed }) => {
          const oa = broadcast === 'a' ? outer.map(() => 1) : outer;
          const ob = broadcast === 'b' ? [] : outer;
          const aShape = [...oa, ...(tA ? [k, m] : [m, k])];
          const bShape = [...ob, ...(tB ? [n, k] : [k, n])];
          assertAgree(
            () =>
              tf.matMul(
                tf.tensor(data(size(aShape), seed), aShape),
                tf.tensor(data(size(bShape), seed + 1), bShape),
                tA,
                tB,
              ),
            `[${aShape}]${tA ? 'ᵀ' : ''} · [${bShape}]${tB ? 'ᵀ' : ''}`,
          );
        },
      ),
      RUNS,
    );
  });

  it('_FusedMatMul: bias (fused or not) and every activation', () => {
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 30 }),
          n: fc.integer({ min: 1, max: 30 }),
          k: fc.integer({ min: 1, max: 50 }),
          tA: fc.boolean(),
          tB: fc.boolean(),
          bias: fc.constantFrom('none', 'row', 'matrix', 'scalar'),
          activation: fc.constantFrom<tf.fused.Activation>(
            'linear',
            'relu',
            'relu6',
            'elu',
            'sigmoid',
            'leakyrelu',
          ),
          seed: fc.integer({ min: 1, max: 1000 }),
        }),
        ({ m, n, k, tA, tB, bias, activation, seed }) => {
          const biasShape = { none: [], row: [n], matrix: [m, n], scalar: [1] }[bias];
          assertAgree(
            () =>
              tf.fused.matMul({
                a: tf.tensor(data(m * k, seed), tA ? [k, m] : [m, k]) as tf.Tensor2D,
                b: tf.tensor(data(k * n, seed + 1), tB ? [n, k] : [k, n]) as tf.Tensor2D,
                transposeA: tA,
                transposeB: tB,
                bias: bias === 'none' ? undefined : tf.tensor(data(size(biasShape), 3), biasShape),
                activation,
                leakyreluAlpha: 0.3,
              }),
            `${m}x${k}x${n} bias ${bias} ${activation}`,
          );
        },
      ),
      RUNS,
    );
  });

  const convCase = fc
    .record({
      batch: fc.integer({ min: 1, max: 3 }),
      h: fc.integer({ min: 1, max: 12 }),
      w: fc.integer({ min: 1, max: 12 }),
      // 1-4 channels in take the direct convolution at stride 1; more take im2col and sgemm.
      inC: fc.integer({ min: 1, max: 7 }),
      outC: fc.integer({ min: 1, max: 5 }),
      fh: fc.integer({ min: 1, max: 4 }),
      fw: fc.integer({ min: 1, max: 4 }),
      stride: fc.integer({ min: 1, max: 3 }),
      dilation: fc.integer({ min: 1, max: 2 }),
      pad: fc.constantFrom<'same' | 'valid' | 1>('same', 'valid', 1),
      seed: fc.integer({ min: 1, max: 1000 }),
    })
    .filter((c) => {
      // Every output dimension at least 1: the input (with padding) covers the dilated filter.
      const margin = c.pad === 'same' ? Infinity : 0; // tfjs errs on some padded overhangs
      const fits = (n: number, f: number) => n + margin >= (f - 1) * c.dilation + 1;
      // tfjs itself computes negative output sizes for a numeric pad with dilation.
      const tfjsCan = c.pad !== 1 || c.dilation === 1;
      return (c.stride === 1 || c.dilation === 1) && tfjsCan && fits(c.h, c.fh) && fits(c.w, c.fw);
    });
  type ConvCase = typeof convCase extends fc.Arbitrary<infer T> ? T : never;
  const tensors = (c: ConvCase) => ({
    x: tf.tensor4d(data(c.batch * c.h * c.w * c.inC, c.seed), [c.batch, c.h, c.w, c.inC]),
    f: tf.tensor4d(data(c.fh * c.fw * c.inC * c.outC, c.seed + 1), [c.fh, c.fw, c.inC, c.outC]),
  });
  const label = (c: ConvCase) =>
    `x [${c.batch},${c.h},${c.w},${c.inC}] f [${c.fh},${c.fw},${c.inC},${c.outC}] stride ${c.stride} dilation ${c.dilation} pad ${c.pad}`;

  it('Conv2D: random sizes, strides, dilations and paddings (NHWC)', () => {
    fc.assert(
      fc.property(convCase, (c) => {
        assertAgree(() => {
          const { x, f } = tensors(c);
          return tf.conv2d(x, f, c.stride, c.pad, 'NHWC', c.dilation);
        }, label(c));
      }),
      RUNS,
    );
  });

  it('FusedConv2D: bias and activation, fused or not', () => {
    fc.assert(
      fc.property(
        convCase,
        fc.constantFrom<tf.fused.Activation>('linear', 'relu', 'elu', 'sigmoid'),
        fc.boolean(),
        (c, activation, withBias) => {
          assertAgree(
            () => {
              const { x, f } = tensors(c);
              const bias = withBias ? tf.tensor1d(data(c.outC, 5)) : undefined;
              return tf.fused.conv2d({
                x,
                filter: f,
                strides: c.stride,
                pad: c.pad,
                dilations: c.dilation,
                bias,
                activation,
              });
            },
            `${label(c)} ${activation} bias ${withBias}`,
          );
        },
      ),
      RUNS,
    );
  });

  it('Conv2DBackpropInput and Conv2DBackpropFilter: gradients of a random weighting', () => {
    fc.assert(
      fc.property(
        convCase.filter((c) => c.dilation === 1),
        (c) => {
          assertAgree(() => {
            const { x, f } = tensors(c);
            const g = tf.grads((xi: tf.Tensor, fi: tf.Tensor) => {
              const y = tf.conv2d(xi as tf.Tensor4D, fi as tf.Tensor4D, c.stride, c.pad);
              return tf.sum(tf.mul(y, tf.tensor(data(y.size, 9), y.shape)));
            });
            return g([x, f]);
          }, label(c));
        },
      ),
      RUNS,
    );
  });

  it('the dense-layer op and its gradients: random sizes, ReLU or linear (cpu: MatMul, Add, Relu)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 30 }),
        fc.boolean(),
        (n, k, m, relu) => {
          assertAgree(
            () => {
              const layer = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor => {
                if (tf.getBackend() === BLAS_BACKEND) return dense(x, w, b, relu);
                const z = tf.add(tf.matMul(x, w), b);
                return relu ? tf.relu(z) : z;
              };
              const x = tf.tensor2d(data(n * k, 1), [n, k]);
              const w = tf.tensor2d(data(k * m, 2), [k, m]);
              const b = tf.tensor1d(data(m, 3));
              const weighting = tf.tensor2d(data(n * m, 4), [n, m]);
              const grads = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
                tf.sum(tf.mul(layer(xi, wi, bi), weighting)),
              )([x, w, b]);
              return [layer(x, w, b), ...grads];
            },
            `${n}x${k} · ${k}x${m}, ${relu ? 'relu' : 'linear'}`,
          );
        },
      ),
      RUNS,
    );
  });

  it('the conv-layer op and its gradients: random geometry, ReLU or linear (cpu: Conv2D, Add, Relu)', () => {
    fc.assert(
      fc.property(
        convCase.filter((c) => c.dilation === 1 && c.pad !== 1),
        fc.boolean(),
        (c, relu) => {
          assertAgree(
            () => {
              const pad = c.pad as 'same' | 'valid';
              const layer = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor => {
                if (tf.getBackend() === BLAS_BACKEND)
                  return conv2d(x, w, b, { strides: [c.stride, c.stride], pad, relu });
                const z = tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, pad), b);
                return relu ? tf.relu(z) : z;
              };
              const { x, f } = tensors(c);
              const b = tf.tensor1d(data(c.outC, 3));
              const y = layer(x, f, b);
              const weighting = tf.tensor(data(y.size, 4), y.shape);
              const grads = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
                tf.sum(tf.mul(layer(xi, wi, bi), weighting)),
              )([x, f, b]);
              return [y, ...grads];
            },
            `${label(c)}, ${relu ? 'relu' : 'linear'}`,
          );
        },
      ),
      RUNS,
    );
  });

  it('first-layer convolutions: MNIST-sized, and images so wide the direct path cuts them in bands', () => {
    for (const [h, w, c, out] of [
      [28, 28, 1, 32],
      [64, 64, 3, 32],
    ]) {
      assertAgree(() => {
        const x = tf.tensor4d(data(2 * h * w * c, 11), [2, h, w, c]);
        const f = tf.tensor4d(data(5 * 5 * c * out, 12), [5, 5, c, out]);
        const g = tf.grads((xi: tf.Tensor, fi: tf.Tensor) => {
          const y = tf.conv2d(xi as tf.Tensor4D, fi as tf.Tensor4D, 1, 'same');
          return tf.sum(tf.mul(y, tf.tensor(data(y.size, 13), y.shape)));
        });
        return [tf.conv2d(x, f, 1, 'same'), ...g([x, f])];
      }, `${h}x${w}x${c} * 5x5x${out}`);
    }
  });

  it('falls back to cpu for NCHW convolutions', () => {
    assertAgree(() => {
      const x = tf.tensor4d(data(2 * 3 * 6 * 5, 1), [2, 3, 6, 5]);
      const f = tf.tensor4d(data(3 * 3 * 3 * 4, 2), [3, 3, 3, 4]);
      return tf.conv2d(x, f, 1, 'same', 'NCHW');
    }, 'NCHW');
  });

  it('Add, Sub, Multiply, RealDiv: same shape, scalar, row, per-row and general broadcasts', () => {
    const ops = { add: tf.add, sub: tf.sub, mul: tf.mul, div: tf.div };
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('same', 'scalar', 'row', 'perRow', 'general'),
        fc.constantFrom(...(Object.keys(ops) as Array<keyof typeof ops>)),
        fc.boolean(),
        (shape, kind, op, swap) => {
          const other = {
            same: shape,
            scalar: [],
            row: shape.slice(-1),
            perRow: [...shape.slice(0, -1), 1],
            general: shape.map((d, i) => (i % 2 === 0 ? 1 : d)),
          }[kind];
          assertAgree(() => {
            // Away from zero, so division stays well conditioned.
            const a = tf.tensor(
              data(size(shape), 1).map((v) => v + 2),
              shape,
            );
            const b = tf.tensor(
              data(size(other), 2).map((v) => v + 2),
              other,
            );
            return swap ? ops[op](b, a) : ops[op](a, b);
          }, `${op} [${shape}] [${other}] ${swap}`);
        },
      ),
      RUNS,
    );
  });

  it('Relu, Step and Sum over any axes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
        fc.boolean(),
        (shape, axes, keepDims) => {
          const axis = [...new Set(axes.filter((a) => a < shape.length))];
          assertAgree(() => {
            const x = tf.tensor(data(size(shape), 4), shape);
            return [
              tf.relu(x),
              tf.step(x, 0.25),
              tf.sum(x, axis.length ? axis : undefined, keepDims),
            ];
          }, `[${shape}] axes [${axis}] keepDims ${keepDims}`);
        },
      ),
      RUNS,
    );
  });

  it('AvgPool, MaxPool and their gradients: random windows, strides and paddings', () => {
    fc.assert(
      fc.property(
        fc.record({
          shape: fc.tuple(
            fc.integer({ min: 1, max: 2 }),
            fc.integer({ min: 2, max: 9 }),
            fc.integer({ min: 2, max: 9 }),
            fc.integer({ min: 1, max: 3 }),
          ),
          size: fc.integer({ min: 1, max: 3 }),
          stride: fc.integer({ min: 1, max: 3 }),
          pad: fc.constantFrom<'same' | 'valid'>('same', 'valid'),
          op: fc.constantFrom('avg', 'max'),
          // Ties: the maximum's gradient goes to the first of equal values, as on cpu.
          ties: fc.boolean(),
        }),
        ({ shape, size: window, stride, pad, op, ties }) => {
          assertAgree(
            () => {
              const values = data(size(shape), 6).map((v) => (ties ? Math.round(v * 2) : v));
              const x = tf.tensor4d(values, shape);
              const pool = (xi: tf.Tensor4D) =>
                op === 'avg'
                  ? tf.avgPool(xi, window, stride, pad)
                  : tf.maxPool(xi, window, stride, pad);
              const y = pool(x);
              const dx = tf.grad((xi: tf.Tensor) =>
                tf.sum(tf.mul(pool(xi as tf.Tensor4D), tf.tensor(data(y.size, 8), y.shape))),
              )(x);
              return [y, dx];
            },
            `${op} [${shape}] window ${window} stride ${stride} ${pad}${ties ? ' ties' : ''}`,
          );
        },
      ),
      RUNS,
    );
  });
});
