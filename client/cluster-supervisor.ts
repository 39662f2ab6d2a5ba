import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { lastLogLine, type ClusterProcess, type LocalCluster } from './local-cluster';

/** A process the supervisor keeps up, and how to start it again. */
interface Unit {
  id: string;
  role: string;
  /** Its role and pid, for the log lines. */
  what: string;
  child: ChildProcess;
  log: string;
  again(): Promise<Unit>;
}

export interface SupervisorOptions {
  /** Start a role process that died again. Defaults to true (`caviar up --no-restart`: false). */
  restart?: boolean;
  /** First wait before a restart; it doubles per crash in a row, up to maxDelayMs. Defaults to 1 s. */
  baseDelayMs?: number;
  /** Defaults to 30 s. */
  maxDelayMs?: number;
  /** A process that stayed up this long starts its back-off over. Defaults to 60 s. */
  stableMs?: number;
  /** One line per death and restart. Defaults to stderr. */
  say?: (line: string) => void;
  /** Told of each restart (a metric). Defaults to nothing. */
  onRestart?: (role: string, id: string) => void;
}

/**
 * Keeps a local cluster whole, as systemd's Restart=on-failure or a StatefulSet would: a role
 * process that dies is said so (with the last line of its log) and started again with the same
 * id, port and checkpoint folder, after a back-off that grows while it keeps crashing. A shard
 * then restores its checkpoint and the running trials go on. The others never go down with it.
 */
export class ClusterSupervisor {
  /** Restarts so far, by process id. */
  readonly restarts = new Map<string, number>();
  private readonly crashesInARow = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly o: Required<SupervisorOptions>;

  constructor(
    private readonly cluster: LocalCluster,
    options: SupervisorOptions = {},
  ) {
    this.o = {
      restart: true,
      baseDelayMs: 1_000,
      maxDelayMs: 30_000,
      stableMs: 60_000,
      say: (line) => process.stderr.write(`${line}\n`),
      onRestart: () => undefined,
      ...options,
    };
  }

  start(): this {
    for (const p of this.cluster.processes) this.watch(this.roleUnit(p));
    const etcd = this.cluster.etcdServer;
    if (etcd?.child) {
      const unit = (): Unit => ({
        id: 'etcd',
        role: 'etcd',
        what: `etcd, pid ${etcd.pid}`,
        child: etcd.child!,
        log: path.join(this.cluster.logDir, 'etcd.log'),
        // Same ports and data folder: members keep their keys, and re-register where leases ended.
        again: async () => {
          await etcd.start();
          return unit();
        },
      });
      this.watch(unit());
    }
    return this;
  }

  /** Stops watching (before the cluster closes, so its own shutdown is no death). */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private roleUnit(p: ClusterProcess): Unit {
    return {
      id: p.id,
      role: p.role,
      what: `${p.role}, pid ${p.pid}`,
      child: p.child,
      log: path.join(this.cluster.logDir, `${p.id}.log`),
      again: async () => this.roleUnit(await this.cluster.restart(p.id)),
    };
  }

  private watch(unit: Unit): void {
    const startedAt = Date.now();
    unit.child.once('exit', (code, signal) => {
      if (this.stopped) return;
      const last = lastLogLine(unit.log);
      this.o.say(
        `caviar up: ${unit.id} (${unit.what}) exited (${signal ?? `code ${code}`})` +
          (last ? `; its log ends: ${last}` : `; see ${unit.log}`),
      );
      if (!this.o.restart) return;
      const stable = Date.now() - startedAt >= this.o.stableMs;
      const crashes = stable ? 1 : (this.crashesInARow.get(unit.id) ?? 0) + 1;
      this.crashesInARow.set(unit.id, crashes);
      this.schedule(unit, Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (crashes - 1)));
    });
  }

  private schedule(unit: Unit, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.stopped) return;
      unit.again().then(
        (next) => {
          if (this.stopped) return;
          const n = (this.restarts.get(unit.id) ?? 0) + 1;
          this.restarts.set(unit.id, n);
          this.o.onRestart(unit.role, unit.id);
          this.o.say(`caviar up: restarted ${unit.id} (${next.what}, restart ${n})`);
          this.watch(next);
        },
        (err: unknown) => {
          this.o.say(
            `caviar up: ${unit.id} did not start again (${err instanceof Error ? err.message : String(err)})`,
          );
          if (!this.stopped) this.schedule(unit, Math.min(this.o.maxDelayMs, delayMs * 2));
        },
      );
    }, delayMs);
    this.timers.add(timer);
  }
}
