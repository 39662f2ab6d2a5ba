import { InvalidArgumentError } from '../errors';
import { normalFrom, seededUniform } from '../seeded-random';
import type { Dataset, DatasetSource } from './dataset';

const ARMS = 3;
const POINTS_PER_ARM = 500;
/** Angular noise (radians); enough that a linear model cannot separate the arms. */
const NOISE = 0.2;

/**
 * Three interleaved spirals in the plane (the CS231n toy problem): not linearly separable, so
 * a hidden layer is needed, yet small enough to train in seconds.
 */
function spirals(): Dataset {
  const count = ARMS * POINTS_PER_ARM;
  const features = new Float32Array(count * 2);
  const labels = new Int32Array(count);
  const normal = normalFrom(seededUniform('synthetic:spirals'));
  for (let arm = 0; arm < ARMS; arm++) {
    for (let i = 0; i < POINTS_PER_ARM; i++) {
      const e = arm * POINTS_PER_ARM + i;
      const r = i / (POINTS_PER_ARM - 1);
      const theta = (arm + r) * 4 + normal() * NOISE;
      features[2 * e] = r * Math.sin(theta);
      features[2 * e + 1] = r * Math.cos(theta);
      labels[e] = arm;
    }
  }
  return {
    features,
    labels,
    count,
    featureShape: [2],
    numClasses: ARMS,
    classNames: ['0', '1', '2'],
  };
}

const GENERATORS: Record<string, () => Dataset> = { spirals };

export const SYNTHETIC_NAMES = Object.keys(GENERATORS);

/** `synthetic:NAME`: a generated data set, the same in every process. */
export class SyntheticSource implements DatasetSource {
  readonly spec: string;
  private readonly generate: () => Dataset;

  constructor(name: string) {
    const generate = Object.hasOwn(GENERATORS, name) ? GENERATORS[name] : undefined;
    if (!generate) {
      throw new InvalidArgumentError(
        `unknown synthetic data set "${name}"; known: ${SYNTHETIC_NAMES.map((n) => `synthetic:${n}`).join(', ')}`,
      );
    }
    this.spec = `synthetic:${name}`;
    this.generate = generate;
  }

  load(): Promise<Dataset> {
    return Promise.resolve(this.generate());
  }
}
