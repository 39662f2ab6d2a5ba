import * as grpc from '@grpc/grpc-js';
import type { CoordinatorClient as GeneratedClient } from '../proto/gen/caviar/v1/Coordinator';
import type { TrialSpec } from '../proto/gen/caviar/v1/TrialSpec';
import type { TrialStatus__Output } from '../proto/gen/caviar/v1/TrialStatus';
import type { ClusterState__Output } from '../proto/gen/caviar/v1/ClusterState';
import type { WorkerInfo } from '../proto/gen/caviar/v1/WorkerInfo';
import type { Work__Output } from '../proto/gen/caviar/v1/Work';
import type { WorkResult } from '../proto/gen/caviar/v1/WorkResult';
import type { SweepRequest } from '../proto/gen/caviar/v1/SweepRequest';
import type { SweepStatus__Output } from '../proto/gen/caviar/v1/SweepStatus';
import type { TensorChunk__Output } from '../proto/gen/caviar/v1/TensorChunk';
import { CHANNEL_OPTIONS, coordinatorServiceProto, deadlineIn } from './rpc';
import { writeChunk } from './tensor-codec';
import { cancelOnAbort, unaryCall } from './grpc-calls';
import { channelCredentials, type TlsIdentity } from './security/tls-identity';
import { explainTlsFailure } from './security/tls-hints';

export interface CoordinatorClientOptions {
  /** Deadline of every unary call. Defaults to 30 s (submitting a trial loads its data set). */
  deadlineMs?: number;
  /** Mutual TLS with this identity's certificate (the coordinator checks its role). Defaults to plaintext. */
  tls?: TlsIdentity;
}

/** How much longer than other calls a Submit may take. */
const SUBMIT_EXTRA_MS = 90_000;

/**
 * The client's own deadline as one line a user can act on, instead of grpc-js's timing dump
 * ("Deadline exceeded after 30.002s,name resolution: ..."); other errors as they are.
 */
function clientDeadline(err: grpc.ServiceError, waitMs: number): grpc.ServiceError {
  if (err.code !== grpc.status.DEADLINE_EXCEEDED || !/^Deadline exceeded after/.test(err.details))
    return err;
  const details = `the coordinator did not answer within ${waitMs / 1000} s`;
  return Object.assign(new Error(details), { code: err.code, details, metadata: err.metadata });
}

/** A typed, promise-based client of the coordinator; every call has a deadline. */
export class CoordinatorClient {
  private readonly client: GeneratedClient;
  private readonly deadlineMs: number;
  private readonly tls: boolean;

  constructor(
    readonly address: string,
    options: CoordinatorClientOptions = {},
  ) {
    const Client = coordinatorServiceProto().Coordinator;
    this.client = new Client(address, channelCredentials(options.tls), CHANNEL_OPTIONS);
    this.deadlineMs = options.deadlineMs ?? 30_000;
    this.tls = options.tls !== undefined;
  }

  private call<T>(
    invoke: (options: grpc.CallOptions, cb: grpc.requestCallback<T>) => grpc.ClientUnaryCall,
    extraMs = 0,
    signal?: AbortSignal,
  ): Promise<T> {
    const waitMs = this.deadlineMs + extraMs;
    return unaryCall<T>((cb) => invoke({ deadline: deadlineIn(waitMs) }, cb), signal).catch(
      (err: grpc.ServiceError) => {
        throw explainTlsFailure(clientDeadline(err, waitMs), this.address, this.tls);
      },
    );
  }

  /** Submit waits for every shard to draw (and checkpoint) its slices: minutes for large models. */
  submitTrial(spec: TrialSpec): Promise<TrialStatus__Output> {
    return this.call((o, cb) => this.client.SubmitTrial(spec, o, cb), SUBMIT_EXTRA_MS);
  }

  getTrial(trial: string): Promise<TrialStatus__Output> {
    return this.call((o, cb) => this.client.GetTrial({ trial }, o, cb));
  }

  listTrials(): Promise<TrialStatus__Output[]> {
    return this.call<{ trials: TrialStatus__Output[] }>((o, cb) =>
      this.client.ListTrials({}, o, cb),
    ).then((r) => r.trials);
  }

  stopTrial(trial: string): Promise<TrialStatus__Output> {
    return this.call((o, cb) => this.client.StopTrial({ trial }, o, cb));
  }

  tuneTrial(trial: string, lr: number): Promise<TrialStatus__Output> {
    return this.call((o, cb) => this.client.TuneTrial({ trial, lr }, o, cb));
  }

  pauseTrial(trial: string): Promise<TrialStatus__Output> {
    return this.call((o, cb) => this.client.PauseTrial({ trial }, o, cb));
  }

  resumeTrial(trial: string): Promise<TrialStatus__Output> {
    return this.call((o, cb) => this.client.ResumeTrial({ trial }, o, cb));
  }

  submitSweep(request: SweepRequest): Promise<SweepStatus__Output> {
    return this.call((o, cb) => this.client.SubmitSweep(request, o, cb));
  }

  getSweep(sweep: string): Promise<SweepStatus__Output> {
    return this.call((o, cb) => this.client.GetSweep({ sweep }, o, cb));
  }

  listSweeps(): Promise<SweepStatus__Output[]> {
    return this.call<{ sweeps: SweepStatus__Output[] }>((o, cb) =>
      this.client.ListSweeps({}, o, cb),
    ).then((r) => r.sweeps);
  }

  /** Status updates of a sweep until it ends; `signal` cancels the stream. */
  watchSweep(sweep: string, signal?: AbortSignal): AsyncGenerator<SweepStatus__Output> {
    return this.follow<SweepStatus__Output>(this.client.WatchSweep({ sweep }), signal);
  }

  private async *follow<T>(
    stream: grpc.ClientReadableStream<T>,
    signal?: AbortSignal,
  ): AsyncGenerator<T> {
    const unsubscribe = cancelOnAbort(stream, signal);
    try {
      for await (const message of stream as AsyncIterable<T>) yield message;
    } finally {
      unsubscribe();
    }
  }

  clusterInfo(): Promise<ClusterState__Output> {
    return this.call((o, cb) => this.client.ClusterInfo({}, o, cb));
  }

  registerWorker(info: WorkerInfo): Promise<ClusterState__Output> {
    return this.call((o, cb) => this.client.RegisterWorker(info, o, cb));
  }

  /** Long-polls for a task for up to `waitMs`; kind "none" when there is nothing to do. */
  acquireWork(worker: string, waitMs: number, signal?: AbortSignal): Promise<Work__Output> {
    return this.call(
      (o, cb) => this.client.AcquireWork({ worker, wait_ms: waitMs }, o, cb),
      waitMs,
      signal,
    );
  }

  completeWork(result: WorkResult): Promise<boolean> {
    return this.call<{ ok: boolean }>((o, cb) => this.client.CompleteWork(result, o, cb)).then(
      (r) => r.ok,
    );
  }

  /** Status updates of a trial until it ends; the stream has no deadline, `signal` cancels it. */
  watchTrial(trial: string, signal?: AbortSignal): AsyncGenerator<TrialStatus__Output> {
    return this.follow<TrialStatus__Output>(this.client.WatchTrial({ trial }), signal);
  }

  /** A trial's parameters, as full tensors by name. */
  async getParameters(
    trial: string,
    shapes: ReadonlyArray<{ name: string; size: number }>,
  ): Promise<Map<string, Float32Array>> {
    const values = new Map(shapes.map((s) => [s.name, new Float32Array(s.size)]));
    await this.readTensors(this.client.GetParameters({ trial }, this.streamOptions()), values);
    return values;
  }

  /** Writes the values of a trial's frozen layers (which no shard holds) into `into`'s tensors. */
  getFrozenParameters(trial: string, into: ReadonlyMap<string, Float32Array>): Promise<void> {
    return this.readTensors(this.client.GetFrozenParameters({ trial }, this.streamOptions()), into);
  }

  private streamOptions(): grpc.CallOptions {
    return { deadline: deadlineIn(this.deadlineMs) };
  }

  private async readTensors(
    stream: AsyncIterable<TensorChunk__Output>,
    into: ReadonlyMap<string, Float32Array>,
  ): Promise<void> {
    for await (const chunk of stream) {
      writeChunk(chunk, (name) => {
        const array = into.get(name);
        return array ? { array, start: 0 } : undefined;
      });
    }
  }

  close(): void {
    this.client.close();
  }
}
