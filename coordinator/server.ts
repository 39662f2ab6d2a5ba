import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { CoordinatorHandlers } from '../proto/gen/caviar/v1/Coordinator';
import type { Work } from '../proto/gen/caviar/v1/Work';
import type { WorkResult__Output } from '../proto/gen/caviar/v1/WorkResult';
import type { TrialStatus } from '../proto/gen/caviar/v1/TrialStatus';
import type { Member } from '../proto/gen/caviar/v1/Member';
import type { TensorChunk } from '../proto/gen/caviar/v1/TensorChunk';
import { bindServer, coordinatorServiceProto, SERVER_OPTIONS } from '../core/rpc';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  toServiceError,
  errorMessage,
} from '../core/errors';
import type { Logger } from '../core/log';
import type { MemberInfo, Membership, MembershipEvent, MembershipWatch } from '../core/membership';
import { resolveTrialSpec, trialSpecMessage } from '../core/trial-spec';
import { loadSplits } from '../core/datasets';
import { initialParameters, modelParams } from '../core/model-spec';
import { placeTensors, slicesOnShard } from '../core/placement';
import { parseLrDecay } from '../core/lr-schedule';
import { chunkTensor } from '../core/tensor-codec';
import { batchKey, batchOfKey } from '../core/batches';
import { ParameterServerClient } from '../core/ps-client';
import { LeaseTable, type Lease } from './leases';
import { TrialRun, type Task } from './trial-run';
import { TERMINAL_STATES, trialStatus, type TrialRecord } from './trial-record';
import type { RecordStore } from './record-store';
import type { PersistedSweep } from './sweep-run';
import { persistedTrial, type PersistedTrial } from './trial-state';
import type { ResolvedTrialSpec } from '../core/trial-spec';
import type { Slice } from '../core/placement';
import { SweepManager } from './sweep-manager';
import { streamUpdates } from './stream-updates';
import type { Hyper } from '../core/sweep';
import { resolveOptimizerConfig } from '../core/optimizer-config';

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
}

interface WorkerEntry {
  id: string;
  backend: string;
  pid: number;
  lastSeen: number;
}

interface LeasedTask {
  trial: string;
  task: Task;
}

const MAX_WAIT_MS = 5_000;

/**
 * One number for "batches applied" from every shard's count: their common value when they agree,
 * otherwise the one furthest from `scheduled`, so a lost or doubled batch on any shard shows.
 */
export function agreedCount(perShard: readonly number[], scheduled: number): number {
  return perShard.reduce(
    (worst, n) => (Math.abs(n - scheduled) > Math.abs(worst - scheduled) ? n : worst),
    perShard[0] ?? 0,
  );
}

/** The coordinator: registers trials, hands their tasks to workers on leases, and records progress. */
export class CoordinatorServer {
  private readonly server = new grpc.Server(SERVER_OPTIONS);
  private readonly trials = new Map<string, TrialRecord>();
  private readonly order: string[] = [];
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly shardClients: ParameterServerClient[];
  private readonly leases: LeaseTable<LeasedTask>;
  private readonly changes = new EventEmitter();
  private waiters: Array<() => boolean> = [];
  private nextTrial = 1;
  private roundRobin = 0;
  private address = '';
  private readonly leaseMs: number;
  private readonly workerTimeoutMs: number;
  private readonly maxFailuresInARow: number;
  /** Live members by role/id, as the membership watch reports them. */
  private readonly members = new Map<string, MemberInfo>();
  private membershipWatch: MembershipWatch | undefined;

  private readonly sweeps: SweepManager;

  constructor(private readonly options: CoordinatorOptions) {
    if (options.shards.length === 0)
      throw new Error('the coordinator needs at least one parameter-server shard');
    this.leaseMs = options.leaseMs ?? 30_000;
    this.workerTimeoutMs = options.workerTimeoutMs ?? 10_000;
    this.maxFailuresInARow = options.maxFailuresInARow ?? 20;
    this.shardClients = options.shards.map((a) => new ParameterServerClient(a));
    this.leases = new LeaseTable((lease) => this.onLeaseExpired(lease));
    this.changes.setMaxListeners(0);
    this.sweeps = new SweepManager(
      {
        startTrial: async (spec, meta) => {
          const { objective, humanError } = this.sweeps.get(meta.sweep).spec;
          const status = await this.submitTrial(spec, {
            ...meta,
            objectiveMetric: objective.metric,
            humanError,
          });
          return status.trial ?? '';
        },
        stopTrial: async (id, reason) => {
          await this.stopTrial(id, reason);
        },
        trialStatus: (id) => trialStatus(this.trial(id)),
        changed: (sweep) => this.changes.emit(`sweep:${sweep}`),
      },
      options.log,
    );
    this.server.addService(coordinatorServiceProto().Coordinator.service, this.handlers());
  }

  async start(): Promise<string> {
    if (this.options.store) {
      await this.restoreTrials(this.options.store.trials);
      await this.sweeps.restoreAll(this.options.store.sweeps);
    }
    if (this.options.membership) {
      this.membershipWatch = await this.options.membership.watch((event) =>
        this.onMembership(event),
      );
      for (const member of this.membershipWatch.members)
        this.onMembership({ type: 'join', member });
    }
    this.address = await bindServer(
      this.server,
      this.options.host ?? '127.0.0.1',
      this.options.port ?? 0,
    );
    return this.address;
  }

  private onMembership({ type, member }: MembershipEvent): void {
    const key = `${member.role}/${member.id}`;
    if (type === 'join') {
      const previous = this.members.get(key);
      this.members.set(key, member);
      // A new registration under the same id (a restarted process, or one whose lease ended) ends
      // the old one's tasks now: its old lease may never expire visibly, the key was overwritten.
      if (member.role === 'worker' && previous && previous.token !== member.token)
        this.workerLeft(member.id);
      if (member.role === 'worker') this.touchWorker(member.id, member.backend, member.pid);
      if (member.role === 'ps') this.onShardJoined(member.address);
      this.changed();
      return;
    }
    // A stale delete (an older registration of a member that registered again) changes nothing.
    if (this.members.get(key)?.token !== member.token && member.token) return;
    this.members.delete(key);
    this.options.log.warn({ role: member.role, id: member.id }, 'member left (lease ended)');
    if (member.role === 'worker') this.workerLeft(member.id);
  }

  /** A worker's lease ended: its tasks go back to their queues now, not when their leases time out. */
  private workerLeft(worker: string): void {
    for (const lease of this.leases.revoke((l) => l.worker === worker)) {
      const record = this.trials.get(lease.item.trial);
      record?.run.release(lease.item.task);
      if (record) this.changed(record.id);
    }
  }

  async close(): Promise<void> {
    await this.membershipWatch?.close().catch(() => undefined);
    this.leases.close();
    for (const waiter of this.waiters) waiter();
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
    for (const c of this.shardClients) c.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private handlers(): CoordinatorHandlers {
    const unary =
      <Req, Res>(fn: (req: Req) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> =>
      (call, callback) => {
        Promise.resolve()
          .then(() => fn(call.request))
          .then(
            (res) => callback(null, res),
            (err: unknown) => callback(toServiceError(err)),
          );
      };
    return {
      SubmitTrial: unary((spec) => this.submitTrial(spec)),
      GetTrial: unary((ref) => trialStatus(this.trial(ref.trial))),
      ListTrials: unary(() => ({ trials: this.order.map((id) => trialStatus(this.trial(id))) })),
      StopTrial: unary((ref) => this.stopTrial(ref.trial)),
      WatchTrial: (call) => this.watchTrial(call),
      GetParameters: (call) => this.getParameters(call),
      ClusterInfo: unary(() => this.clusterState()),
      RegisterWorker: unary((info) => {
        this.touchWorker(info.id, info.backend, info.pid);
        this.options.log.info({ worker: info.id, backend: info.backend }, 'worker registered');
        return this.clusterState();
      }),
      AcquireWork: (call, callback) => this.acquireWork(call, callback),
      CompleteWork: unary((result) => ({ ok: this.completeWork(result) })),
      TuneTrial: unary((req) => this.tuneTrial(req.trial, req.lr)),
      PauseTrial: unary((ref) => this.setPaused(ref.trial, true)),
      ResumeTrial: unary((ref) => this.setPaused(ref.trial, false)),
      SubmitSweep: unary((req) => this.sweeps.submit(req)),
      GetSweep: unary((ref) => this.sweeps.get(ref.sweep).status()),
      ListSweeps: unary(() => ({ sweeps: this.sweeps.list() })),
      WatchSweep: (call) => {
        const id = call.request.sweep;
        streamUpdates(call, this.changes, `sweep:${id}`, () => {
          const status = this.sweeps.get(id).status();
          return { message: status, last: status.status !== 'running' };
        });
      },
    };
  }

  /** Panda mode: a new base learning rate for a running trial, on every shard holding it. */
  private async tuneTrial(id: string, lr: number): Promise<TrialStatus> {
    const record = this.trial(id);
    if (TERMINAL_STATES.has(record.run.state))
      throw new FailedPreconditionError(`trial ${id} has ended (${record.run.state})`);
    const optimizer = resolveOptimizerConfig({ ...record.spec.optimizer, lr });
    await Promise.all(
      this.shardClients
        .filter((_, s) => slicesOnShard(record.slices, s).length > 0)
        .map((c) => c.setLearningRate(id, optimizer.lr)),
    );
    record.spec.optimizer = optimizer;
    record.run.lr = parseLrDecay(optimizer.lr_decay, optimizer.lr);
    this.options.log.info({ trial: id, lr }, 'learning rate tuned');
    this.changed(id);
    return trialStatus(record);
  }

  private setPaused(id: string, paused: boolean): TrialStatus {
    const record = this.trial(id);
    if (TERMINAL_STATES.has(record.run.state))
      throw new FailedPreconditionError(`trial ${id} has ended (${record.run.state})`);
    record.run.paused = paused;
    this.options.log.info({ trial: id, paused }, paused ? 'trial paused' : 'trial resumed');
    this.changed(id);
    return trialStatus(record);
  }

  /** Every trial's status, in submission order (for metrics and the dashboard). */
  trialStatuses(): TrialStatus[] {
    return this.order.map((id) => trialStatus(this.trial(id)));
  }

  /** The cluster's members as this coordinator sees them (for metrics and the dashboard). */
  clusterMembers(): Member[] {
    return this.clusterState().members;
  }

  private trial(id: string): TrialRecord {
    const record = this.trials.get(id);
    if (!record) throw new NotFoundError(`no trial ${JSON.stringify(id)}`);
    return record;
  }

  private liveWorkers(now = Date.now()): WorkerEntry[] {
    return [...this.workers.values()].filter((w) => this.isLive(w, now));
  }

  private isLive(worker: WorkerEntry, now = Date.now()): boolean {
    if (this.options.membership) return this.members.has(`worker/${worker.id}`);
    return now - worker.lastSeen <= this.workerTimeoutMs;
  }

  private touchWorker(id: string, backend?: string, pid?: number): void {
    const entry = this.workers.get(id) ?? {
      id,
      backend: backend ?? '',
      pid: pid ?? 0,
      lastSeen: 0,
    };
    if (backend) entry.backend = backend;
    if (pid) entry.pid = pid;
    entry.lastSeen = Date.now();
    this.workers.set(id, entry);
  }

  private clusterState(): { members: Member[]; shards: string[] } {
    if (this.options.membership) {
      const members = [...this.members.values()].map((m) => ({
        role: m.role,
        id: m.id,
        address: m.address ?? '',
        pid: m.pid ?? 0,
        backend: m.backend ?? '',
      }));
      return { members, shards: this.options.shards };
    }
    const members: Member[] = [
      { role: 'coordinator', id: 'coordinator', address: this.address, pid: process.pid },
      ...this.options.shards.map((address, i) => ({ role: 'ps', id: `ps-${i}`, address })),
      ...this.liveWorkers().map((w) => ({
        role: 'worker',
        id: w.id,
        pid: w.pid,
        backend: w.backend,
      })),
    ];
    return { members, shards: this.options.shards };
  }

  /** What every trial needs from its spec: data shapes, parameters, placement, the run's options. */
  private async trialBasis(spec: ResolvedTrialSpec) {
    const splits = await loadSplits(spec.dataset, { labelColumn: spec.labelColumn || undefined });
    const { featureShape, numClasses } = splits.train;
    const params = modelParams(spec.model, featureShape, numClasses);
    return {
      params,
      inputShape: featureShape,
      numClasses,
      slices: placeTensors(params, this.shardClients.length),
      runOptions: {
        spec,
        trainCount: splits.train.count,
        quorum: () => this.liveWorkers().length,
        lr: parseLrDecay(spec.optimizer.lr_decay ?? '', Number(spec.optimizer.lr)),
      },
    };
  }

  private async submitTrial(
    message: Parameters<typeof resolveTrialSpec>[0],
    sweep?: {
      sweep: string;
      round: number;
      hyper: Hyper;
      objectiveMetric: string;
      humanError: number | null;
    },
  ): Promise<TrialStatus> {
    const spec = resolveTrialSpec(message);
    const basis = await this.trialBasis(spec);
    const id = spec.name || `trial-${this.nextTrial++}`;
    if (this.trials.has(id)) throw new AlreadyExistsError(`trial ${id} exists already`);
    const values = initialParameters(basis.params, spec.seed);
    await Promise.all(
      this.shardClients.map((client, shard) => {
        const mine = slicesOnShard(basis.slices, shard);
        if (mine.length === 0) return Promise.resolve(0);
        return client.init(
          id,
          { optimizer: spec.optimizer, mode: spec.mode, slices: mine },
          values,
        );
      }),
    );
    const record: TrialRecord = {
      ...basis,
      id,
      spec,
      run: new TrialRun(basis.runOptions),
      shards: this.options.shards,
      startedAt: Date.now(),
      error: '',
      batchesApplied: 0,
      batchesAppliedPerShard: [],
      pushesRefused: {},
      backends: new Set(),
      workers: new Set(),
      timing: { compute: 0, pull: 0, push: 0, eval: 0, apply: 0 },
      failuresInARow: 0,
      sweep: sweep?.sweep ?? '',
      round: sweep?.round ?? 0,
      hyperJson: sweep ? JSON.stringify(sweep.hyper) : '',
      stopReason: '',
      objectiveMetric: sweep?.objectiveMetric ?? 'val_accuracy',
      humanError: sweep?.humanError ?? null,
      predictMsP95: 0,
    };
    this.addTrial(record);
    this.options.log.info({ trial: id, spec: trialSpecMessage(spec) }, 'trial submitted');
    this.changed(id);
    return trialStatus(record);
  }

  private addTrial(record: TrialRecord): void {
    this.trials.set(record.id, record);
    this.order.push(record.id);
    const n = /^trial-(\d+)$/.exec(record.id)?.[1];
    if (n) this.nextTrial = Math.max(this.nextTrial, Number(n) + 1);
  }

  /**
   * Takes over the trials a previous coordinator saved: finished ones as they were (never run
   * again), running ones from where the shards are: the batches every shard holds count as done.
   */
  private async restoreTrials(store: RecordStore<PersistedTrial>): Promise<void> {
    const saved = (await store.loadAll()).sort((a, b) => a.startedAt - b.startedAt);
    for (const p of saved) {
      try {
        this.addTrial(await this.restoreTrial(p));
      } catch (err) {
        this.options.log.error(
          { trial: p.id, err: errorMessage(err) },
          'cannot restore a saved trial',
        );
      }
    }
    if (saved.length > 0)
      this.options.log.info(
        { trials: saved.map((p) => `${p.id}:${p.run.state}`) },
        'took over saved trials',
      );
  }

  private async restoreTrial(p: PersistedTrial): Promise<TrialRecord> {
    const spec = resolveTrialSpec(p.spec);
    const basis = await this.trialBasis(spec);
    const ongoing = !TERMINAL_STATES.has(p.run.state);
    const applied = ongoing ? await this.appliedEverywhere(p.id, basis.slices) : new Set<number>();
    const record: TrialRecord = {
      ...basis,
      id: p.id,
      spec,
      run: TrialRun.resume(basis.runOptions, p.run, applied ?? new Set()),
      shards: this.options.shards,
      startedAt: p.startedAt,
      finishedAt: p.finishedAt,
      error: p.error,
      batchesApplied: p.batchesApplied,
      batchesAppliedPerShard: p.batchesAppliedPerShard,
      pushesRefused: p.pushesRefused,
      backends: new Set(p.backends),
      workers: new Set(p.workers),
      timing: p.timing,
      failuresInARow: 0,
      sweep: p.sweep,
      round: p.round,
      hyperJson: p.hyperJson,
      stopReason: p.stopReason,
      objectiveMetric: p.objectiveMetric,
      humanError: p.humanError,
      predictMsP95: p.predictMsP95 ?? 0,
    };
    if (ongoing && !applied) {
      record.error = 'its parameters are gone from the shards (they restarted without it)';
      record.run.fail();
    } else if (record.run.state === 'finishing') {
      void this.finish(record);
    } else if (ongoing && record.run.evalState === 'verify') {
      void this.reconcile(record, 'taken over');
    }
    return record;
  }

  /** Keys of the batches that every shard holding the trial has applied; undefined if one lost it. */
  private async appliedEverywhere(
    trial: string,
    slices: Slice[],
  ): Promise<Set<number> | undefined> {
    const holding = this.shardClients.filter((_, s) => slicesOnShard(slices, s).length > 0);
    const answers = await Promise.all(holding.map((c) => c.applied(trial)));
    if (answers.some((a) => !a.held)) return undefined;
    const sets = answers.map((a) => new Set(a.epochs.map((e, i) => batchKey(e, a.batches[i]))));
    return new Set([...sets[0]].filter((key) => sets.every((set) => set.has(key))));
  }

  private changed(trial?: string): void {
    const record = trial ? this.trials.get(trial) : undefined;
    if (record && this.options.store) {
      const ended = TERMINAL_STATES.has(record.run.state);
      void this.options.store.trials.save(persistedTrial(record), ended).catch(() => undefined);
    }
    if (trial) this.changes.emit(trial);
    const sweep = trial ? this.trials.get(trial)?.sweep : undefined;
    if (sweep) this.changes.emit(`sweep:${sweep}`);
    this.waiters = this.waiters.filter((w) => !w());
  }

  /** The next task of any running trial, in round-robin order so no trial starves. */
  private takeWork(worker: string): Work | undefined {
    // With membership, a worker without a live lease gets nothing: its pushes would be fenced.
    if (this.options.membership && !this.members.has(`worker/${worker}`)) return undefined;
    const running = this.order.filter((id) => this.trials.get(id)?.run.state === 'running');
    for (let k = 0; k < running.length; k++) {
      const id = running[(this.roundRobin + k) % running.length];
      const record = this.trials.get(id)!;
      const task = record.run.takeTask();
      if (!task) continue;
      this.roundRobin = (this.roundRobin + k + 1) % Math.max(1, running.length);
      const lease = this.leases.grant(worker, { trial: id, task }, this.leaseMs);
      return this.workMessage(record, lease.id, task);
    }
    return undefined;
  }

  private workMessage(record: TrialRecord, lease: string, task: Task): Work {
    const common = {
      lease,
      trial: record.id,
      spec: trialSpecMessage(record.spec),
      epoch: task.epoch,
      lease_ms: this.leaseMs,
      shards: record.shards,
    };
    if (task.kind === 'eval') return { kind: 'eval', ...common };
    return {
      kind: 'train',
      ...common,
      batch: task.batch,
      indices: Array.from(task.indices),
      step: task.step,
      step_size: task.stepSize,
      min_version: task.minVersion,
    };
  }

  private acquireWork(
    call: grpc.ServerUnaryCall<{ worker: string; wait_ms: number }, Work>,
    callback: grpc.sendUnaryData<Work>,
  ): void {
    const { worker } = call.request;
    this.touchWorker(worker);
    const immediate = this.takeWork(worker);
    if (immediate) return callback(null, immediate);
    let answered = false;
    const answer = (work: Work): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      callback(null, work);
    };
    const timer = setTimeout(
      () => answer({ kind: 'none' }),
      Math.min(call.request.wait_ms || 1_000, MAX_WAIT_MS),
    );
    this.waiters.push(() => {
      if (answered) return true;
      if (call.cancelled) {
        answered = true;
        clearTimeout(timer);
        return true;
      }
      const work = this.takeWork(worker);
      if (work) answer(work);
      return answered;
    });
  }

  private completeWork(result: WorkResult__Output): boolean {
    this.touchWorker(result.worker);
    const lease = this.leases.complete(result.lease);
    if (!lease) return false;
    const record = this.trials.get(lease.item.trial);
    if (!record) return false;
    const { task } = lease.item;
    if (result.error) {
      this.onTaskFailed(record, task, result.worker, result.error, result.transient);
      return true;
    }
    record.failuresInARow = 0;
    const backend = this.workers.get(result.worker)?.backend;
    if (backend) record.backends.add(backend);
    record.workers.add(result.worker);
    this.addTiming(record, task, result);
    if (task.kind === 'train') {
      record.run.completeTrain(task, result.loss);
      if (record.run.evalState === 'verify') void this.reconcile(record, 'epoch end');
    } else if (
      record.run.completeEval(task.epoch, {
        valLoss: result.loss,
        valAccuracy: result.accuracy,
        trainAccuracy: result.train_accuracy,
        trainDevLoss: result.train_dev_loss,
        trainDevAccuracy: result.train_dev_accuracy,
      })
    ) {
      const last = record.run.history[record.run.history.length - 1];
      record.predictMsP95 = result.predict_ms_p95;
      this.sweeps.epochEnded(record.id);
      this.options.log.info({ trial: record.id, ...last }, 'epoch done');
      if (record.run.state === 'finishing') void this.finish(record);
    }
    this.changed(record.id);
    return true;
  }

  private addTiming(record: TrialRecord, task: Task, result: WorkResult__Output): void {
    const t = record.timing;
    t.pull += result.pull_ms / 1000;
    if (task.kind === 'eval') {
      t.eval += result.compute_ms / 1000;
    } else {
      t.compute += result.compute_ms / 1000;
      t.push += result.push_ms / 1000;
    }
  }

  /**
   * Asks every shard holding the trial which batches it has applied, and runs again the completed
   * ones it lacks (a shard restored from a checkpoint older than its crash). At an epoch's end this
   * is what lets the evaluation go out; after a shard restart it repairs at once.
   */
  private async reconcile(record: TrialRecord, why: string): Promise<void> {
    if (record.reconciling) return record.reconciling;
    record.reconciling = this.reconcileOnce(record, why).finally(() => {
      record.reconciling = undefined;
    });
    return record.reconciling;
  }

  private async reconcileOnce(record: TrialRecord, why: string): Promise<void> {
    const completed = new Set(record.run.completedKeys());
    const holding = this.shardClients.filter((_, s) => slicesOnShard(record.slices, s).length > 0);
    let answers;
    try {
      answers = await Promise.all(holding.map((c) => c.applied(record.id)));
    } catch (err) {
      // A shard that is down cannot answer; the next epoch end or its restart asks again.
      this.options.log.warn(
        { trial: record.id, why, err: errorMessage(err) },
        'cannot reconcile yet',
      );
      setTimeout(() => void this.reconcile(record, why), 500).unref();
      return;
    }
    if (answers.some((a) => !a.held)) {
      record.error =
        'a parameter-server shard lost the trial (restarted without a checkpoint holding it)';
      record.run.fail();
      await this.release(record);
      this.changed(record.id);
      return;
    }
    const missing = new Map<number, { epoch: number; batch: number }>();
    for (const answer of answers) {
      const held = new Set(answer.epochs.map((e, i) => batchKey(e, answer.batches[i])));
      for (const key of completed) if (!held.has(key)) missing.set(key, batchOfKey(key));
    }
    const repaired = record.run.repair([...missing.values()]);
    if (repaired > 0)
      this.options.log.warn({ trial: record.id, why, repaired }, 'running lost batches again');
    else record.run.verified();
    this.changed(record.id);
  }

  /** A shard (re)joined: one that restarted from a checkpoint may lack recent batches of every trial. */
  private onShardJoined(address: string | undefined): void {
    if (!address || !this.options.shards.includes(address)) return;
    for (const record of this.trials.values()) {
      if (record.run.state === 'running') void this.reconcile(record, `shard ${address} joined`);
    }
  }

  private onTaskFailed(
    record: TrialRecord,
    task: Task,
    worker: string,
    error: string,
    transient: boolean,
  ): void {
    if (!transient) record.failuresInARow += 1;
    this.options.log.warn({ trial: record.id, worker, task: task.kind, error }, 'task failed');
    record.run.release(task);
    if (record.failuresInARow >= this.maxFailuresInARow) {
      record.error = error;
      record.run.fail();
      void this.release(record);
    }
    this.changed(record.id);
  }

  private onLeaseExpired(lease: Lease<LeasedTask>): void {
    const record = this.trials.get(lease.item.trial);
    if (!record) return;
    this.options.log.warn(
      { trial: record.id, worker: lease.worker, task: lease.item.task.kind },
      'lease expired',
    );
    record.run.release(lease.item.task);
    this.changed(record.id);
  }

  /** A trial's last epoch is evaluated: count what the shards applied, keep the parameters, free the shards. */
  private async finish(record: TrialRecord): Promise<void> {
    try {
      const holding = this.shardClients
        .map((c, s) => ({ c, s }))
        .filter(({ s }) => slicesOnShard(record.slices, s).length > 0);
      const stats = await Promise.all(holding.map(({ c }) => c.stats(record.id)));
      record.batchesAppliedPerShard = stats.map((s) => Number(s.batches_applied));
      record.batchesApplied = agreedCount(record.batchesAppliedPerShard, record.run.scheduled);
      for (const s of stats) {
        for (const [reason, n] of Object.entries(s.refused)) {
          record.pushesRefused[reason] = (record.pushesRefused[reason] ?? 0) + Number(n);
        }
      }
      record.timing.apply = stats.reduce((sum, s) => sum + s.apply_seconds, 0);
      record.finalParams = await this.pullAll(record);
      record.run.state = 'completed';
    } catch (err) {
      record.error = `finishing the trial failed: ${errorMessage(err)}`;
      record.run.state = 'failed';
    }
    record.finishedAt = Date.now();
    this.options.log.info(
      { trial: record.id, state: record.run.state, applied: record.batchesApplied },
      'trial ended',
    );
    await this.release(record);
    this.changed(record.id);
  }

  /** Frees the trial's shard memory and its outstanding leases; its sweep moves on. */
  private async release(record: TrialRecord): Promise<void> {
    record.finishedAt ??= Date.now();
    this.leases.revoke((l) => l.item.trial === record.id);
    await Promise.all(
      this.shardClients.map((c) =>
        c
          .drop(record.id)
          .catch((err: unknown) =>
            this.options.log.warn({ err: errorMessage(err) }, 'drop failed'),
          ),
      ),
    );
    this.sweeps.trialEnded(record.id);
  }

  private async pullAll(record: TrialRecord): Promise<Map<string, Float32Array>> {
    const values = new Map(
      record.params.map((p) => [p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1))]),
    );
    await Promise.all(
      this.shardClients.map((client, shard) => {
        const mine = slicesOnShard(record.slices, shard);
        return mine.length === 0
          ? Promise.resolve()
          : client.pull(record.id, mine, values, { minVersion: 0 });
      }),
    );
    return values;
  }

  private async stopTrial(id: string, reason = 'stopped by the user'): Promise<TrialStatus> {
    const record = this.trial(id);
    if (!TERMINAL_STATES.has(record.run.state)) {
      record.stopReason = reason;
      record.finalParams = await this.pullAll(record).catch(() => undefined);
      record.run.stop();
      await this.release(record);
      this.changed(id);
    }
    return trialStatus(record);
  }

  private watchTrial(call: grpc.ServerWritableStream<{ trial: string }, TrialStatus>): void {
    const record = this.trials.get(call.request.trial);
    if (!record) {
      call.destroy(
        Object.assign(new Error(`no trial ${JSON.stringify(call.request.trial)}`), {
          code: grpc.status.NOT_FOUND,
        }),
      );
      return;
    }
    streamUpdates(call, this.changes, record.id, () => {
      const status = trialStatus(record);
      return { message: status, last: TERMINAL_STATES.has(status.status ?? '') };
    });
  }

  private getParameters(call: grpc.ServerWritableStream<{ trial: string }, TensorChunk>): void {
    Promise.resolve()
      .then(async () => {
        const record = this.trial(call.request.trial);
        const values = record.finalParams ?? (await this.pullAll(record));
        for (const p of record.params) {
          for (const chunk of chunkTensor(p.name, 0, values.get(p.name)!)) {
            if (!call.write(chunk)) await new Promise((r) => call.once('drain', r));
          }
        }
        call.end();
      })
      .catch((err: unknown) =>
        call.destroy(Object.assign(new Error(errorMessage(err)), toServiceError(err))),
      );
  }
}
