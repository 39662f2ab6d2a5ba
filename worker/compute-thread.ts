import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/log';
import { InvalidArgumentError } from '../core/errors';
import type { BackendChoice, ComputeThreadChoice } from '../core/backend-choice';
import { modelParams, parameterCount, type ModelSpec } from '../core/model-spec';
import type { EvalData, EvalResult, GradientResult } from './compute-backend';
import type {
  ComputeOp,
  ComputeReply,
  ComputeRequest,
  ComputeResults,
  ComputeThreadData,
} from './compute-thread-protocol';
import { selectBackend, tensorflowInstalled } from './select-backend';
import { inlineService, type ComputeService, type TrialCompute } from './trial-compute';

interface Pending {
  resolve: (result: ComputeResults[ComputeOp]) => void;
  reject: (err: Error) => void;
}

/**
 * A worker's models on a thread of their own. A batch's compute (seconds for a large model) then
 * never holds the main thread, which keeps answering the shards' streams, the metrics scrape
 * and the coordinator, and with --overlap pushes one batch while the thread computes the next.
 * Parameter values and examples cross in shared memory (allocateFor, datasetFor); gradients
 * come back by moving their buffers, not copying them.
 */
export class ComputeThread implements ComputeService {
  private readonly pending = new Map<number, Pending>();
  private calls = 0;
  private models = 0;
  /** Why the thread can no longer answer, once it cannot. */
  private ended: Error | undefined;

  private constructor(
    private readonly thread: Worker,
    readonly name: string,
    private readonly onLost?: (why: Error) => void,
  ) {
    thread.on('message', (reply: ComputeReply) => this.answer(reply));
    thread.on('error', (err) => this.lost(new Error(`the compute thread failed: ${err.message}`)));
    thread.on('exit', (code) => this.lost(new Error(`the compute thread exited (${code})`)));
  }

  /**
   * Starts the thread and selects the backend in it; rejects as selectBackend would. `onLost`
   * hears of a thread that ends other than by close (it ran out of memory, say): no model of
   * this process can compute again.
   */
  static async start(
    data: ComputeThreadData,
    onLost?: (why: Error) => void,
  ): Promise<ComputeThread> {
    const thread = new Worker(path.join(__dirname, 'compute-thread-main.js'), { workerData: data });
    // The thread must not keep a process alive that is otherwise done.
    thread.unref();
    const first = await new Promise<ComputeReply>((resolve, reject) => {
      thread.once('message', resolve);
      thread.once('error', reject);
      thread.once('exit', (code) => reject(new Error(`the compute thread exited (${code})`)));
    });
    if (first.type !== 'ready') {
      await thread.terminate();
      throw new Error(first.type === 'failed' ? first.message : 'the compute thread did not start');
    }
    return new ComputeThread(thread, first.name, onLost);
  }

  async createModel(
    spec: ModelSpec,
    inputShape: readonly number[],
    numClasses: number,
    frozen: ReadonlySet<string>,
  ): Promise<TrialCompute> {
    const model = ++this.models;
    await this.call({
      op: 'create',
      model,
      spec,
      inputShape: [...inputShape],
      numClasses,
      frozen: [...frozen],
    });
    return new ThreadedTrialCompute(this, model);
  }

  /** Sends a request; resolves with its answer, rejects with the thread's error. */
  call<R extends ComputeRequest>(request: R): Promise<ComputeResults[R['op']]> {
    if (this.ended) return Promise.reject(this.ended);
    const call = ++this.calls;
    return new Promise((resolve, reject) => {
      this.pending.set(call, { resolve: resolve as Pending['resolve'], reject });
      try {
        this.thread.postMessage({ ...request, call });
      } catch (err) {
        this.pending.delete(call);
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    this.end(new Error('the compute thread is closed'));
    await this.thread.terminate();
  }

  private answer(reply: ComputeReply): void {
    if (reply.type !== 'done' && reply.type !== 'error') return;
    const pending = this.pending.get(reply.call);
    this.pending.delete(reply.call);
    if (reply.type === 'done') pending?.resolve(reply.result);
    else
      pending?.reject(
        reply.invalidArgument ? new InvalidArgumentError(reply.message) : new Error(reply.message),
      );
  }

  private lost(why: Error): void {
    if (!this.ended) this.onLost?.(why);
    this.end(why);
  }

  private end(why: Error): void {
    this.ended ??= why;
    for (const p of this.pending.values()) p.reject(this.ended);
    this.pending.clear();
  }
}

class ThreadedTrialCompute implements TrialCompute {
  readonly threaded = true;

  constructor(
    private readonly thread: ComputeThread,
    private readonly model: number,
  ) {}

  async setParameters(values: ReadonlyMap<string, Float32Array>): Promise<void> {
    await this.thread.call({ op: 'set', model: this.model, values: [...values] });
  }

  async gradients(
    features: Float32Array,
    labels: Int32Array,
    count: number,
    noiseKey: string,
    values?: ReadonlyMap<string, Float32Array>,
  ): Promise<GradientResult> {
    const { loss, grads } = await this.thread.call({
      op: 'gradients',
      model: this.model,
      features,
      labels,
      count,
      noiseKey,
      ...(values ? { values: [...values] } : {}),
    });
    return { loss, grads: new Map(grads) };
  }

  evaluate(data: EvalData, count: number): Promise<EvalResult> {
    return this.thread.call({ op: 'evaluate', model: this.model, data: plain(data), count });
  }

  predictLatencyP95(data: EvalData): Promise<number> {
    return this.thread.call({ op: 'predict', model: this.model, data: plain(data) });
  }

  dispose(): void {
    this.thread.call({ op: 'dispose', model: this.model }).catch(() => undefined);
  }
}

/** Only the examples cross to the thread, not the rest of a Dataset (names, class names). */
function plain(data: EvalData): EvalData {
  return { features: data.features, labels: data.labels, count: data.count };
}

/**
 * Under `auto`, models of at least this many parameters compute on the thread. A batch of a
 * smaller one takes a few ms, which the handoff to a thread and back would lengthen by a tenth
 * on a busy machine; from about here a batch takes tens of ms and up, long enough to hold the
 * main thread's streams and keep-alives, while the handoff is lost in it.
 */
export const THREAD_MIN_PARAMS = 1_000_000;

export interface ComputeServiceOptions {
  /** BLAS threads of the blas backend. */
  threads: number;
  thread: ComputeThreadChoice;
  log: Logger;
  logName: string;
  logBindings: Record<string, string | number>;
  /** Told when a compute thread ends other than by close. */
  onThreadLost?: (why: Error) => void;
}

/**
 * Models of THREAD_MIN_PARAMS and more on a compute thread, started when the first one comes,
 * with the backend the main thread selected; smaller ones on the main thread.
 */
class SizedComputeService implements ComputeService {
  private thread: Promise<ComputeService> | undefined;

  constructor(
    private readonly inline: ComputeService,
    private readonly options: ComputeServiceOptions,
  ) {}

  get name(): string {
    return this.inline.name;
  }

  async createModel(
    spec: ModelSpec,
    inputShape: readonly number[],
    numClasses: number,
    frozen: ReadonlySet<string>,
  ): Promise<TrialCompute> {
    const size = parameterCount(modelParams(spec, inputShape, numClasses));
    const service = size >= THREAD_MIN_PARAMS ? await this.threadOrInline() : this.inline;
    return service.createModel(spec, inputShape, numClasses, frozen);
  }

  async close(): Promise<void> {
    await (await this.thread)?.close();
  }

  /** The thread, or this thread where it cannot start (said once, at warn). */
  private threadOrInline(): Promise<ComputeService> {
    const { onThreadLost } = this.options;
    const choice = this.name as BackendChoice;
    this.thread ??= ComputeThread.start(threadData(choice, this.options), onThreadLost).catch(
      (err: unknown) => {
        this.options.log.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'the compute thread did not start; large models compute on the main thread',
        );
        return this.inline;
      },
    );
    return this.thread;
  }
}

function threadData(choice: BackendChoice, options: ComputeServiceOptions): ComputeThreadData {
  return {
    choice,
    threads: options.threads,
    logName: options.logName,
    logBindings: options.logBindings,
  };
}

/**
 * The worker's compute. `on`: every model on a thread of its own; `auto`: the large ones (see
 * THREAD_MIN_PARAMS); `off`: all on the main thread. The synthetic backend (nothing to compute)
 * and tfjs-node's native backends, whose libtensorflow binding is not known to load in a worker
 * thread (tfjs issue 8388), always stay on the main thread; so does `auto` where those packages
 * are installed, since it would pick them.
 */
export async function startComputeService(
  choice: BackendChoice,
  options: ComputeServiceOptions,
): Promise<ComputeService> {
  const native =
    choice === 'gpu' || choice === 'node' || (choice === 'auto' && tensorflowInstalled());
  if (options.thread === 'on' && !native && choice !== 'synthetic')
    return ComputeThread.start(threadData(choice, options), options.onThreadLost);
  const inline = inlineService(
    await selectBackend(choice, options.log, { threads: options.threads }),
  );
  const threadable = ['blas', 'wasm', 'cpu'].includes(inline.name);
  return options.thread === 'auto' && threadable
    ? new SizedComputeService(inline, options)
    : inline;
}
