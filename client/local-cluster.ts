import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ROLE_NODE_FLAGS, type ReadyLine } from '../core/role-process';
import { EtcdServer, etcdAvailable, freePort } from '../core/etcd-server';
import { diesWithParent } from '../core/child-guard';
import { availableMemory } from '../core/memory-size';
import { enableLocalEtcdAuth, type EtcdUser } from '../core/etcd-auth';
import { ETCD_PASSWORD_ENV } from '../core/membership-options';
import { loadTlsIdentity, TLS_ROLES, type TlsIdentity } from '../core/security/tls-identity';

export interface LocalClusterOptions {
  workers: number;
  shards: number;
  /** Compute backend of the workers. Defaults to auto. */
  backend?: string;
  /** Folder for the processes' logs. Defaults to a fresh folder under the OS temp dir. */
  logDir?: string;
  /** Lease duration handed to the coordinator, in ms. Defaults to the coordinator's own. */
  leaseMs?: number;
  /**
   * Memory each shard's trials may take (caviar ps --max-memory), in bytes. Defaults to an even
   * share of half this machine's memory: the shards of one machine do not each count on half.
   */
  shardMaxMemory?: number;
  /** Training batches per lease, handed to the coordinator. Defaults to the coordinator's own. */
  batchesPerLease?: number;
  /** How long a process may take to report ready. Defaults to 60 s. */
  startTimeoutMs?: number;
  /**
   * Membership: "auto" starts an etcd here when the `etcd` binary is installed (and runs without
   * one, saying so, when it is not), "none" runs without, a URL uses an existing etcd.
   * Defaults to "auto".
   */
  etcd?: string;
  /** Membership lease TTL in seconds. Defaults to the roles' own (3 s). */
  memberTtl?: number;
  /** Cluster name in etcd keys. Defaults to a name unique to this launcher. */
  cluster?: string;
  /** Compute threads per worker (BLAS). Defaults to the worker's own (1: one process per core). */
  threads?: number;
  /** Workers' `--compute-thread` (auto, on, off). Defaults to theirs (auto). */
  computeThread?: string;
  /** Extra environment for every role process (tests inject faults this way). */
  env?: NodeJS.ProcessEnv;
  /**
   * The address the coordinator (and through it the workers) should use for shard i, given the
   * address it listens on: a proxy in front of it, say. Defaults to the shard's own address.
   */
  shardRoute?: (address: string, index: number) => Promise<string>;
  /**
   * Mutual TLS between every role: each process reads its own certificate from this identity's
   * folder (so the folder must hold all four roles'). Defaults to plaintext.
   */
  tls?: TlsIdentity;
}

export interface ClusterProcess extends ReadyLine {
  child: ChildProcess;
  /** What started it, so a fault test can start it again the same way. */
  args: string[];
}

/** The CLI flags that shape a local cluster (`caviar train --local`, `caviar up`). */
export interface LocalClusterFlags {
  workers: number;
  shards: number;
  backend: string;
  leaseMs?: number;
  etcd?: string;
  memberTtl?: number;
  threads?: number;
  computeThread?: string;
  tls?: TlsIdentity;
}

export function localClusterOptions(flags: LocalClusterFlags): LocalClusterOptions {
  const { workers, shards, backend, leaseMs, etcd, memberTtl, threads, computeThread, tls } = flags;
  return { workers, shards, backend, leaseMs, etcd, memberTtl, threads, computeThread, tls };
}

/** Clusters started in this process and not closed yet, for a reaper that outlives its callers. */
const live = new Set<LocalCluster>();

/** The local clusters this process started and has not closed. */
export function liveClusters(): ReadonlySet<LocalCluster> {
  return live;
}

/** bin/caviar.js, which starts a role's entry point. */
const CAVIAR_BIN = path.resolve(__dirname, '..', '..', 'bin', 'caviar.js');

/**
 * An ephemeral cluster on 127.0.0.1: S shards, a coordinator and W workers, each its own process
 * started from the `caviar` binary. Each process's log goes to its own file under `logDir`.
 */
export class LocalCluster {
  readonly processes: ClusterProcess[] = [];
  readonly logDir: string;
  coordinator = '';
  /** The etcd the roles register with, or undefined when running without membership. */
  etcdUrl: string | undefined;
  etcdServer: EtcdServer | undefined;
  /** The user the roles log in to this cluster's own etcd as, when it runs with auth. */
  private etcdUser: EtcdUser | undefined;
  readonly cluster: string;
  /** Why there is no etcd, when there is none. */
  etcdNote = '';
  private closed = false;
  private readonly onExit = (): void => {
    this.killAll('SIGKILL');
    this.etcdServer?.child?.kill('SIGKILL');
  };

  constructor(private readonly options: LocalClusterOptions) {
    this.logDir = options.logDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-'));
    fs.mkdirSync(this.logDir, { recursive: true });
    this.cluster = options.cluster ?? `local-${process.pid}-${Date.now().toString(36)}`;
  }

  private async startEtcd(): Promise<void> {
    const choice = this.options.etcd ?? 'auto';
    if (choice === 'none') {
      this.etcdNote = 'membership without etcd (--etcd none): no fencing';
      return;
    }
    if (choice !== 'auto') {
      this.etcdUrl = choice;
      return;
    }
    if (!etcdAvailable()) {
      this.etcdNote =
        'no etcd binary found: membership without etcd, no fencing (apt-get install etcd-server)';
      return;
    }
    const tls = this.options.tls;
    this.etcdServer = new EtcdServer({
      dataDir: path.join(this.logDir, 'etcd-data'),
      logFile: path.join(this.logDir, 'etcd.log'),
      tlsDir: tls?.dir,
    });
    this.etcdUrl = await this.etcdServer.start();
    // With --tls the cluster's etcd checks certificates and users too, as a production one should.
    if (tls) this.etcdUser = await enableLocalEtcdAuth(this.etcdUrl, tls);
  }

  /** One line on how members find each other, for the launcher's log. */
  membershipLine(): string {
    return this.etcdUrl
      ? `membership: etcd at ${this.etcdUrl}, cluster ${this.cluster}`
      : this.etcdNote;
  }

  /** The flags that put a role process in this cluster's membership. */
  private membershipArgs(): string[] {
    if (!this.etcdUrl) return [];
    const ttl = this.options.memberTtl ? ['--member-ttl', String(this.options.memberTtl)] : [];
    const user = this.etcdUser ? ['--etcd-user', this.etcdUser.username] : [];
    return ['--etcd', this.etcdUrl, '--cluster', this.cluster, ...ttl, ...user];
  }

  /** The etcd password travels in the environment, out of sight of `ps`. */
  private secretEnv(): NodeJS.ProcessEnv {
    return this.etcdUser ? { [ETCD_PASSWORD_ENV]: this.etcdUser.password } : {};
  }

  async start(): Promise<this> {
    // Every role's files are checked here, so a folder missing one fails before any process starts.
    const tlsDir = this.options.tls?.dir;
    if (tlsDir !== undefined) for (const role of TLS_ROLES) loadTlsIdentity(tlsDir, role);
    process.once('exit', this.onExit);
    live.add(this);
    try {
      await this.startEtcd();
      // Fixed ports and checkpoint folders: a shard restarted with the same id comes back at the
      // address the coordinator knows, and restores its newest checkpoint.
      const shardMemory =
        this.options.shardMaxMemory ??
        Math.floor(availableMemory() / 2 / Math.max(1, this.options.shards));
      const shards = await Promise.all(
        Array.from({ length: this.options.shards }, (_, i) =>
          this.spawnOnFreePort('ps', `ps-${i}`, (port) => [
            '--id',
            `ps-${i}`,
            '--port',
            String(port),
            '--checkpoint-dir',
            path.join(this.logDir, 'checkpoints', `ps-${i}`),
            '--max-memory',
            String(shardMemory),
          ]),
        ),
      );
      const { leaseMs, batchesPerLease } = this.options;
      const leaseArgs = [
        ...(leaseMs ? ['--lease-ms', String(leaseMs)] : []),
        ...(batchesPerLease ? ['--batches-per-lease', String(batchesPerLease)] : []),
      ];
      // A fixed port too: a restarted coordinator is found where the workers and the CLI look.
      const route = this.options.shardRoute ?? ((address: string) => Promise.resolve(address));
      const shardAddresses = await Promise.all(shards.map((s, i) => route(s.address, i)));
      const coordinator = await this.spawnOnFreePort('coordinator', 'coordinator', (port) => [
        '--ps',
        shardAddresses.join(','),
        '--port',
        String(port),
        ...leaseArgs,
      ]);
      this.coordinator = coordinator.address;
      await Promise.all(
        Array.from({ length: this.options.workers }, (_, i) =>
          this.spawnRole('worker', `worker-${i}`, [
            '--id',
            `worker-${i}`,
            '--coordinator',
            coordinator.address,
            '--backend',
            this.options.backend ?? 'auto',
            ...(this.options.threads ? ['--threads', String(this.options.threads)] : []),
            ...(this.options.computeThread ? ['--compute-thread', this.options.computeThread] : []),
          ]),
        ),
      );
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  /**
   * Starts a role on a port free a moment ago, which another process may take before the role
   * binds it: then the role exits (EADDRINUSE) before it is ready, and it starts on another.
   */
  private async spawnOnFreePort(
    role: ReadyLine['role'],
    id: string,
    args: (port: number) => string[],
  ): Promise<ClusterProcess> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.spawnRole(role, id, args(await freePort()));
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
      }
    }
  }

  /** Starts one role process and waits for its ready line on stdout. */
  spawnRole(
    role: ReadyLine['role'],
    id: string,
    roleArgs: string[],
    env: NodeJS.ProcessEnv = {},
  ): Promise<ClusterProcess> {
    const tls = this.options.tls ? ['--tls', this.options.tls.dir] : [];
    const args = [role, ...roleArgs, ...this.membershipArgs(), ...tls];
    const logFile = path.join(this.logDir, `${id}.log`);
    const log = fs.openSync(logFile, 'a');
    const [command, argv] = diesWithParent(process.execPath, [
      ...ROLE_NODE_FLAGS,
      CAVIAR_BIN,
      ...args,
    ]);
    const child = spawn(command, argv, {
      stdio: ['ignore', 'pipe', log],
      env: { ...process.env, ...this.options.env, ...this.secretEnv(), ...env },
    });
    fs.closeSync(log);
    return new Promise((resolve, reject) => {
      const timeout = setTimeout(
        () =>
          fail(new Error(`${id} did not start within ${this.startTimeoutMs} ms; see ${logFile}`)),
        this.startTimeoutMs,
      );
      const lines = readline.createInterface({ input: child.stdout! });
      const fail = (err: Error): void => {
        clearTimeout(timeout);
        lines.close();
        child.kill('SIGKILL');
        reject(err);
      };
      child.once('exit', (code, signal) =>
        fail(
          new Error(
            `${id} exited (${signal ?? code}) before it was ready: ${lastLogLine(logFile)}`,
          ),
        ),
      );
      lines.once('line', (line) => {
        clearTimeout(timeout);
        child.removeAllListeners('exit');
        try {
          const ready = JSON.parse(line) as ReadyLine;
          const entry = { ...ready, child, args: roleArgs };
          const at = this.processes.findIndex((p) => p.id === ready.id);
          if (at >= 0) this.processes[at] = entry;
          else this.processes.push(entry);
          resolve(entry);
        } catch {
          fail(new Error(`${id} printed ${JSON.stringify(line)} instead of its ready line`));
        }
      });
    });
  }

  /** The coordinator's web dashboard URL ("" before start). */
  get dashboard(): string {
    return this.processes.find((p) => p.role === 'coordinator')?.dashboard ?? '';
  }

  /** Every process's Prometheus endpoint. */
  metricsUrls(): string[] {
    return this.processes.flatMap((p) => (p.metrics ? [p.metrics] : []));
  }

  process(id: string): ClusterProcess {
    const found = this.processes.find((p) => p.id === id);
    if (!found) throw new Error(`no process ${id} in this cluster`);
    return found;
  }

  /** Sends `signal` to a role process and, for a killing signal, waits for it to exit. */
  async signal(id: string, signal: NodeJS.Signals): Promise<void> {
    const { child } = this.process(id);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
  }

  /** Starts a role process again with the arguments it was first started with (and `env`). */
  restart(id: string, env: NodeJS.ProcessEnv = {}): Promise<ClusterProcess> {
    const p = this.process(id);
    return this.spawnRole(p.role, p.id, p.args, env);
  }

  private get startTimeoutMs(): number {
    return this.options.startTimeoutMs ?? 60_000;
  }

  private killAll(signal: NodeJS.Signals): void {
    for (const p of this.processes)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  }

  /** SIGTERM to every process (workers first), SIGKILL to any still alive after `graceMs`. */
  async close(graceMs = 3_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    process.off('exit', this.onExit);
    const alive = this.processes.filter(
      (p) => p.child.exitCode === null && p.child.signalCode === null,
    );
    const exited = alive.map(
      (p) => new Promise<void>((resolve) => p.child.once('exit', () => resolve())),
    );
    for (const role of ['worker', 'coordinator', 'ps']) {
      for (const p of alive) if (p.role === role) p.child.kill('SIGTERM');
    }
    // A stopped (SIGSTOP) process cannot act on SIGTERM until it continues.
    for (const p of alive) p.child.kill('SIGCONT');
    const timer = setTimeout(() => this.killAll('SIGKILL'), graceMs);
    await Promise.all(exited);
    clearTimeout(timer);
    await this.etcdServer?.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The last line of a log file ("" if it cannot be read). */
export function lastLogLine(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '';
  }
}
