import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { ReadyLine } from '../core/role-process';

export interface LocalClusterOptions {
  workers: number;
  shards: number;
  /** Compute backend of the workers. Defaults to auto. */
  backend?: string;
  /** Folder for the processes' logs. Defaults to a fresh folder under the OS temp dir. */
  logDir?: string;
  /** Lease duration handed to the coordinator, in ms. Defaults to the coordinator's own. */
  leaseMs?: number;
  /** How long a process may take to report ready. Defaults to 60 s. */
  startTimeoutMs?: number;
}

export interface ClusterProcess extends ReadyLine {
  child: ChildProcess;
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
  private closed = false;
  private readonly onExit = (): void => this.killAll('SIGKILL');

  constructor(private readonly options: LocalClusterOptions) {
    this.logDir = options.logDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-'));
    fs.mkdirSync(this.logDir, { recursive: true });
  }

  async start(): Promise<this> {
    process.once('exit', this.onExit);
    try {
      const shards = await Promise.all(
        Array.from({ length: this.options.shards }, (_, i) =>
          this.spawnRole('ps', `ps-${i}`, ['--id', `ps-${i}`]),
        ),
      );
      const leaseArgs = this.options.leaseMs ? ['--lease-ms', String(this.options.leaseMs)] : [];
      const coordinator = await this.spawnRole('coordinator', 'coordinator', [
        '--ps',
        shards.map((s) => s.address).join(','),
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
          ]),
        ),
      );
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  /** Starts one role process and waits for its ready line on stdout. */
  spawnRole(role: ReadyLine['role'], id: string, args: string[]): Promise<ClusterProcess> {
    const logFile = path.join(this.logDir, `${id}.log`);
    const log = fs.openSync(logFile, 'a');
    const child = spawn(process.execPath, [CAVIAR_BIN, role, ...args], {
      stdio: ['ignore', 'pipe', log],
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
          new Error(`${id} exited (${signal ?? code}) before it was ready: ${lastLine(logFile)}`),
        ),
      );
      lines.once('line', (line) => {
        clearTimeout(timeout);
        child.removeAllListeners('exit');
        try {
          const ready = JSON.parse(line) as ReadyLine;
          const entry = { ...ready, child };
          this.processes.push(entry);
          resolve(entry);
        } catch {
          fail(new Error(`${id} printed ${JSON.stringify(line)} instead of its ready line`));
        }
      });
    });
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
    const timer = setTimeout(() => this.killAll('SIGKILL'), graceMs);
    await Promise.all(exited);
    clearTimeout(timer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function lastLine(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '';
  }
}
