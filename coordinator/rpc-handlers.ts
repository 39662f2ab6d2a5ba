import type { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { CoordinatorHandlers } from '../proto/gen/caviar/v1/Coordinator';
import type { TrialSpec } from '../proto/gen/caviar/v1/TrialSpec';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import type { TensorChunk } from '../proto/gen/caviar/v1/TensorChunk';
import { toServiceError, errorMessage } from '../core/errors';
import type { Logger } from '../core/log';
import { chunkTensor } from '../core/tensor-codec';
import { drained } from '../core/grpc-calls';
import { TERMINAL_STATES, trialStatus, type TrialRecord } from './trial-record';
import type { TrialTable } from './trial-table';
import type { ClusterRoster, ClusterState } from './cluster-roster';
import type { WorkDispatcher } from './work-dispatch';
import { streamUpdates } from './stream-updates';
import type { ParamInfo } from '../core/model-spec';

interface Tensors {
  params: readonly ParamInfo[];
  values: ReadonlyMap<string, Float32Array>;
}

/** A unary handler from a plain function; what it throws reaches the client with its gRPC code. */
export function unary<Req, Res>(
  fn: (req: Req) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err)),
      );
  };
}

export type SweepRpcName = 'SubmitSweep' | 'GetSweep' | 'ListSweeps' | 'WatchSweep';

/** What the trial, cluster and work RPCs act on. */
export interface CoordinatorRpcTargets {
  trials: TrialTable;
  /** Emits a trial's id whenever the trial changes. */
  changes: EventEmitter;
  roster: ClusterRoster;
  dispatch: WorkDispatcher;
  log: Logger;
  submitTrial(spec: TrialSpec): Promise<TrialStatus>;
  stopTrial(id: string): Promise<TrialStatus>;
  tuneTrial(id: string, lr: number): Promise<TrialStatus>;
  setPaused(id: string, paused: boolean): TrialStatus;
  clusterState(): ClusterState;
  /** The trial's current parameters, from the shards. */
  pullAll(record: TrialRecord): Promise<Map<string, Float32Array>>;
}

/** The Coordinator service's handler table: the trial, cluster and work RPCs, and `sweeps`. */
export function coordinatorHandlers(
  targets: CoordinatorRpcTargets,
  sweeps: Pick<CoordinatorHandlers, SweepRpcName>,
): CoordinatorHandlers {
  const { trials, roster, dispatch } = targets;
  return {
    SubmitTrial: unary((spec) => targets.submitTrial(spec)),
    GetTrial: unary((ref) => trialStatus(trials.get(ref.trial))),
    ListTrials: unary(() => ({ trials: trials.statuses() })),
    StopTrial: unary((ref) => targets.stopTrial(ref.trial)),
    WatchTrial: (call) => watchTrial(call, targets),
    GetParameters: (call) =>
      streamParameters(call, targets, async (record) => ({
        params: record.params,
        values: record.finalParams ?? (await targets.pullAll(record)),
      })),
    GetFrozenParameters: (call) =>
      streamParameters(call, targets, (record) => ({
        params: record.params.filter((p) => record.frozen.has(p.name)),
        values: record.frozenValues,
      })),
    ClusterInfo: unary(() => targets.clusterState()),
    RegisterWorker: unary((info) => {
      roster.touchWorker(info.id, info.backend, info.pid);
      targets.log.info({ worker: info.id, backend: info.backend }, 'worker registered');
      return targets.clusterState();
    }),
    AcquireWork: (call, callback) => dispatch.acquireWork(call, callback),
    CompleteWork: unary((result) => ({ ok: dispatch.completeWork(result) })),
    TuneTrial: unary((req) => targets.tuneTrial(req.trial, req.lr)),
    PauseTrial: unary((ref) => targets.setPaused(ref.trial, true)),
    ResumeTrial: unary((ref) => targets.setPaused(ref.trial, false)),
    ...sweeps,
  };
}

function watchTrial(
  call: grpc.ServerWritableStream<{ trial: string }, TrialStatus>,
  { trials, changes }: CoordinatorRpcTargets,
): void {
  const record = trials.find(call.request.trial);
  if (!record) {
    call.destroy(
      Object.assign(new Error(`no trial ${JSON.stringify(call.request.trial)}`), {
        code: grpc.status.NOT_FOUND,
      }),
    );
    return;
  }
  streamUpdates(call, changes, record.id, () => {
    const status = trialStatus(record);
    return { message: status, last: TERMINAL_STATES.has(status.status ?? '') };
  });
}

/** Streams a trial's tensors `pick` chooses, in chunks, in the model's order. */
function streamParameters(
  call: grpc.ServerWritableStream<{ trial: string }, TensorChunk>,
  targets: CoordinatorRpcTargets,
  pick: (record: TrialRecord) => Tensors | Promise<Tensors>,
): void {
  Promise.resolve()
    .then(async () => {
      const { params, values } = await pick(targets.trials.get(call.request.trial));
      for (const p of params) {
        for (const chunk of chunkTensor(p.name, 0, values.get(p.name)!)) {
          if (call.cancelled) return;
          if (!call.write(chunk)) await drained(call);
        }
      }
      call.end();
    })
    .catch((err: unknown) =>
      call.destroy(Object.assign(new Error(errorMessage(err)), toServiceError(err))),
    );
}
