import type { BackendChoice } from '../core/backend-choice';
import type { ModelSpec } from '../core/model-spec';
import type { EvalData, EvalResult } from './compute-backend';

/** What the compute thread is started with. */
export interface ComputeThreadData {
  choice: BackendChoice;
  /** BLAS threads of the blas backend. */
  threads: number;
  /** The worker's logger name and bindings: the thread logs as the worker does. */
  logName: string;
  logBindings: Record<string, string | number>;
}

/** A call to the compute thread; `model` is the id the worker gave the model at `create`. */
export type ComputeRequest =
  | {
      op: 'create';
      model: number;
      spec: ModelSpec;
      inputShape: number[];
      numClasses: number;
      frozen: string[];
    }
  | { op: 'set'; model: number; values: Array<[string, Float32Array]> }
  | {
      op: 'gradients';
      model: number;
      features: Float32Array;
      labels: Int32Array;
      count: number;
      noiseKey: string;
      /** The parameters to set first. */
      values?: Array<[string, Float32Array]>;
    }
  | { op: 'evaluate'; model: number; data: EvalData; count: number }
  | { op: 'predict'; model: number; data: EvalData }
  | { op: 'dispose'; model: number };

/** What each request's answer carries. */
export interface ComputeResults {
  create: null;
  set: null;
  gradients: { loss: number; grads: Array<[string, Float32Array]> };
  evaluate: EvalResult;
  predict: number;
  dispose: null;
}

export type ComputeOp = ComputeRequest['op'];

/** A request as it crosses to the thread: numbered, so that its answer finds its caller. */
export type NumberedRequest = ComputeRequest & { call: number };

export type ComputeReply =
  | { type: 'ready'; name: string }
  | { type: 'failed'; message: string }
  | { type: 'done'; call: number; result: ComputeResults[ComputeOp] }
  | { type: 'error'; call: number; message: string; invalidArgument: boolean };
