import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import type { Member } from '../proto/gen/caviar/v1/Member';
import { bindServer, coordinatorServiceProto, SERVER_OPTIONS } from '../core/rpc';
import type { Logger } from '../core/log';
import type { Membership } from '../core/membership';
import type { ResolvedTrialSpec } from '../core/trial-spec';
import { TERMINAL_STATES, trialStatus } from './trial-record';
import type { RecordStore } from './record-store';
import type { PersistedSweep } from './sweep-run';
import { persistedTrial, type PersistedTrial } from './trial-state';
import type { TrialRecord } from './trial-record';
import { SweepManager } from './sweep-manager';
import { TrialTable } from './trial-table';
import { ClusterRoster, type ClusterState } from './cluster-roster';
import { TrialShards } from './trial-shards';
import { trialBasis, type TrialBasis } from './trial-basis';
import { TrialLifecycle } from './trial-lifecycle';
import { TrialStarts } from './trial-start';
import { ShardReconciler } from './shard-reconcile';
import { DEFAULT_BATCHES_PER_LEASE, WorkDispatcher } from './work-dispatch';
import { recordTaskResult, type TaskResultEffects } from './task-results';
import { takeOverTrials } from './trial-takeover';
import { coordinatorHandlers, type CoordinatorRpcTargets } from './rpc-handlers';
import { sweepEvent, sweepHandlers } from './sweep-rpc';
import { serverCredentials, type TlsIdentity } from '../core/security/tls-identity';
import { COORDINATOR_ACCESS, guardedServerOptions } from '../core/security/rpc-access';

export { agreedCount } from './trial-shards';

export interface CoordinatorOptions {
  /** Parameter-server shard addresses (host:port); at least one. */
  shards: string[];
  log: Logger;
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Defaults to 0 (a free port). */
  port?: number;
  /** How long a worker may hold a task before it goes to another worker. Defaults to 30 s. */
  leaseMs?: number;
  /**
   * Async trials: training batches per lease, run in order and reported together. Defaults to
   * DEFAULT_BATCHES_PER_LEASE.
   */
  batchesPerLease?: number;
  /** A worker not heard from for this long no longer counts toward a sync quorum. Defaults to 10 s. */
  workerTimeoutMs?: number;
  /** Worker failures in a row after which a trial fails instead of retrying. Defaults to 20. */
  maxFailuresInARow?: number;
  /**
   * Cluster membership (etcd). With it, a worker whose lease expires loses its tasks at once and
   * gets no new ones until it registers again. Without it, workers count as live while they poll.
   */
  membership?: Membership;
  /** Where trials and sweeps are saved so a restarted or standby coordinator takes them over (etcd). */
  store?: { trials: RecordStore<PersistedTrial>; sweeps: RecordStore<PersistedSweep> };
  /** Mutual TLS: serve with this identity, check callers' roles, and reach shards with it. */
  tls?: TlsIdentity;
}

/** The coordinator: registers trials, hands their tasks to workers on leases, and records progress. */
export class CoordinatorServer {
  private readonly server: grpc.Server;
  private readonly trials = new TrialTable();
  /** Emits a trial's id, or sweepEvent(its id), whenever it changes. */
  private readonly changes = new EventEmitter();
  private readonly shards: TrialShards;
  private readonly starts: TrialStarts;
  private readonly roster: ClusterRoster;
  private readonly dispatch: WorkDispatcher;
  private readonly reconciler: ShardReconciler;
  private readonly lifecycle: TrialLifecycle;
  private readonly sweeps: SweepManager;
  private address = '';

  constructor(private readonly options: CoordinatorOptions) {
    if (options.shards.length === 0)
      throw new Error('the coordinator needs at least one parameter-server shard');
    const { log } = options;
    this.server = new grpc.Server(
      guardedServerOptions(SERVER_OPTIONS, options.tls, COORDINATOR_ACCESS),
    );
    this.shards = new TrialShards(options.shards, log, options.tls);
    this.starts = new TrialStarts(this.trials, this.shards);
    this.roster = new ClusterRoster(
      {
        shards: options.shards,
        log,
        workerTimeoutMs: options.workerTimeoutMs ?? 10_000,
        membership: options.membership,
      },
      {
        workerLeft: (worker) => this.dispatch.workerLeft(worker),
        shardJoined: (address) => this.reconciler.shardJoined(address),
        changed: () => this.changed(),
      },
    );
    const taskEffects = this.taskEffects();
    this.dispatch = new WorkDispatcher({
      trials: this.trials,
      roster: this.roster,
      log,
      leaseMs: options.leaseMs ?? 30_000,
      batchesPerLease: options.batchesPerLease ?? DEFAULT_BATCHES_PER_LEASE,
      taskReturned: (record, task, result) => recordTaskResult(record, task, result, taskEffects),
      changed: (trial) => this.changed(trial),
    });
    this.reconciler = new ShardReconciler({
      addresses: options.shards,
      shards: this.shards,
      trials: this.trials,
      log,
      release: (record) => this.lifecycle.release(record),
      changed: (trial) => this.changed(trial),
    });
    this.lifecycle = new TrialLifecycle({
      addresses: options.shards,
      trials: this.trials,
      shards: this.shards,
      log,
      basis: (spec) => this.basis(spec),
      start: (spec, basis) => this.starts.start(spec, basis),
      revokeLeases: (trial) => this.dispatch.trialEnded(trial),
      sweepTrialEnded: (trial) => this.sweeps.trialEnded(trial),
      persist: (record) => this.persist(record),
      changed: (trial) => this.changed(trial),
    });
    this.changes.setMaxListeners(0);
    this.sweeps = new SweepManager(
      {
        startTrial: async (spec, meta) => {
          const { objective, humanError } = this.sweeps.get(meta.sweep).spec;
          const status = await this.lifecycle.submit(spec, {
            ...meta,
            objectiveMetric: objective.metric,
            humanError,
          });
          return status.trial ?? '';
        },
        stopTrial: async (id, reason) => {
          await this.lifecycle.stop(id, reason);
        },
        trialStatus: (id) => trialStatus(this.trials.get(id)),
        changed: (sweep) => this.changes.emit(sweepEvent(sweep)),
      },
      log,
    );
    this.server.addService(
      coordinatorServiceProto().Coordinator.service,
      coordinatorHandlers(this.rpcTargets(), sweepHandlers(this.sweeps, this.changes)),
    );
  }

  async start(): Promise<string> {
    if (this.options.store) {
      await takeOverTrials(this.options.store.trials, {
        addresses: this.options.shards,
        shards: this.shards,
        trials: this.trials,
        log: this.options.log,
        basis: (spec) => this.basis(spec),
        start: (spec, basis) => this.starts.start(spec, basis),
        finish: (record) => this.lifecycle.finish(record),
        reconcile: (record, why) => this.reconciler.reconcile(record, why),
      });
      await this.sweeps.restoreAll(this.options.store.sweeps);
    }
    await this.roster.start();
    this.address = await bindServer(
      this.server,
      this.options.host ?? '127.0.0.1',
      this.options.port ?? 0,
      serverCredentials(this.options.tls),
    );
    return this.address;
  }

  async close(): Promise<void> {
    await this.roster.close();
    this.dispatch.close();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2_000);
      force.unref();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    this.shards.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Every trial's status, in submission order (for metrics and the dashboard). */
  trialStatuses(): TrialStatus[] {
    return this.trials.statuses();
  }

  /** The cluster's members as this coordinator sees them (for metrics and the dashboard). */
  clusterMembers(): Member[] {
    return this.clusterState().members;
  }

  private clusterState(): ClusterState {
    return this.roster.clusterState(this.address);
  }

  private basis(spec: ResolvedTrialSpec): Promise<TrialBasis> {
    return trialBasis(spec, this.shards.count, () => this.roster.liveWorkerCount());
  }

  private rpcTargets(): CoordinatorRpcTargets {
    return {
      trials: this.trials,
      changes: this.changes,
      roster: this.roster,
      dispatch: this.dispatch,
      log: this.options.log,
      submitTrial: (spec) => this.lifecycle.submit(spec),
      stopTrial: (id) => this.lifecycle.stop(id),
      tuneTrial: (id, lr) => this.lifecycle.tune(id, lr),
      setPaused: (id, paused) => this.lifecycle.setPaused(id, paused),
      clusterState: () => this.clusterState(),
      pullAll: (record) => this.shards.pullAll(record),
    };
  }

  private taskEffects(): TaskResultEffects {
    return {
      log: this.options.log,
      maxFailuresInARow: this.options.maxFailuresInARow ?? 20,
      backendOf: (worker) => this.roster.backendOf(worker),
      reconcile: (record, why) => this.reconciler.reconcile(record, why),
      syncStepStalled: (record) => this.reconciler.syncStepStalled(record),
      epochEnded: (trial, epoch) => this.sweeps.epochEnded(trial, epoch),
      finish: (record) => this.lifecycle.finish(record),
      release: (record) => this.lifecycle.release(record),
      changed: (trial) => this.changed(trial),
    };
  }

  /** Writes the trial's state to etcd now (where there is a store), and waits for it. */
  private async persist(record: TrialRecord): Promise<void> {
    await this.options.store?.trials.save(persistedTrial(record), true);
  }

  /** Saves the trial, tells its watchers and its sweep's, and lets waiting workers try again. */
  private changed(trial?: string): void {
    const record = trial ? this.trials.find(trial) : undefined;
    if (record && this.options.store) {
      const ended = TERMINAL_STATES.has(record.run.state);
      void this.options.store.trials.save(persistedTrial(record), ended).catch(() => undefined);
    }
    if (trial) this.changes.emit(trial);
    const sweep = trial ? this.trials.find(trial)?.sweep : undefined;
    if (sweep) this.changes.emit(sweepEvent(sweep));
    this.dispatch.wake();
  }
}
