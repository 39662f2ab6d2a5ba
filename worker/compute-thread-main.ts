import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../core/log';
import { InvalidArgumentError } from '../core/errors';
import type { ComputeBackend, EvalData, TrialModel } from './compute-backend';
import { selectBackend } from './select-backend';
import { predictLatencyP95 } from './predict-latency';
import type {
  ComputeReply,
  ComputeResults,
  ComputeThreadData,
  NumberedRequest,
} from './compute-thread-protocol';

// The worker's compute thread (see compute-thread.ts): it holds the trials' models and runs
// their batches, so that a batch of a large model never holds the worker's main thread.

const port = parentPort!;
const data = workerData as ComputeThreadData;
const log = createLogger(data.logName, { ...data.logBindings, thread: 'compute' });
const models = new Map<number, TrialModel>();

function modelOf(id: number): TrialModel {
  const model = models.get(id);
  if (!model) throw new Error(`the compute thread holds no model ${id}`);
  return model;
}

/**
 * A gradient array's buffer goes to the main thread without a copy where the array is all of it
 * (a kernel's fresh output, which nothing here holds after the batch); a view into a larger
 * buffer is copied, since moving the buffer would take whatever else lives in it.
 */
function movable(grads: Map<string, Float32Array>): {
  grads: Array<[string, Float32Array]>;
  transfer: ArrayBuffer[];
} {
  const transfer = new Set<ArrayBuffer>();
  const out: Array<[string, Float32Array]> = [];
  for (const [name, g] of grads) {
    const whole =
      g.buffer instanceof ArrayBuffer && g.byteOffset === 0 && g.byteLength === g.buffer.byteLength;
    if (whole && !transfer.has(g.buffer)) {
      transfer.add(g.buffer);
      out.push([name, g]);
    } else out.push([name, g.slice()]);
  }
  return { grads: out, transfer: [...transfer] };
}

function evaluateAll(model: TrialModel, d: EvalData, count: number): ComputeResults['evaluate'] {
  const size = d.features.length / Math.max(1, d.count);
  return model.evaluate(d.features.subarray(0, count * size), d.labels.subarray(0, count), count);
}

function handle(backend: ComputeBackend, req: NumberedRequest): void {
  const done = (result: ComputeResults[typeof req.op], transfer: ArrayBuffer[] = []): void =>
    port.postMessage({ type: 'done', call: req.call, result } satisfies ComputeReply, transfer);
  switch (req.op) {
    case 'create':
      models.set(
        req.model,
        backend.createModel(req.spec, req.inputShape, req.numClasses, new Set(req.frozen)),
      );
      return done(null);
    case 'set':
      modelOf(req.model).setParameters(new Map(req.values));
      return done(null);
    case 'gradients': {
      const model = modelOf(req.model);
      if (req.values) model.setParameters(new Map(req.values));
      const { loss, grads } = model.gradients(req.features, req.labels, req.count, req.noiseKey);
      const moved = movable(grads);
      return done({ loss, grads: moved.grads }, moved.transfer);
    }
    case 'evaluate':
      return done(evaluateAll(modelOf(req.model), req.data, req.count));
    case 'predict':
      return done(predictLatencyP95(modelOf(req.model), req.data));
    case 'dispose':
      models.get(req.model)?.dispose();
      models.delete(req.model);
      return done(null);
  }
}

async function main(): Promise<void> {
  let backend: ComputeBackend;
  try {
    backend = await selectBackend(data.choice, log, { threads: data.threads });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    port.postMessage({ type: 'failed', message } satisfies ComputeReply);
    return;
  }
  port.on('message', (req: NumberedRequest) => {
    try {
      handle(backend, req);
    } catch (err) {
      port.postMessage({
        type: 'error',
        call: req.call,
        message: err instanceof Error ? err.message : String(err),
        invalidArgument: err instanceof InvalidArgumentError,
      } satisfies ComputeReply);
    }
  });
  port.postMessage({ type: 'ready', name: backend.name } satisfies ComputeReply);
}

void main();
