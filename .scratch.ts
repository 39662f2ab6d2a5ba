import * as tf from '@tensorflow/tfjs-core';
import { buildLayersModel } from './core/layers-model';
const m = buildLayersModel({ type: 'mlp', hidden: [4] }, [28, 28, 1], 10);
console.log(tf.getBackend(), m.trainableWeights.map((w) => [w.name, w.originalName, w.shape]));
const m2 = buildLayersModel({ type: 'mlp', hidden: [4] }, [3], 2);
console.log(m2.trainableWeights.map((w) => [w.name, w.originalName, w.shape]));
const l = buildLayersModel({ type: 'lenet5' }, [28, 28, 1], 10);
console.log(l.trainableWeights.map((w) => [w.name, w.originalName, w.shape]), tf.memory().numTensors);
