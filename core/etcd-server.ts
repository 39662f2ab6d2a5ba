import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { diesWithParent } from './child-guard';
import { TlsConfigError, tlsFiles } from './security/tls-identity';

export interface EtcdServerOptions {
  /** Where etcd keeps its data; reusing it across restarts keeps leases and keys. */
  dataDir: string;
  /** Log file of the etcd process. Defaults to <dataDir>.log. */
  logFile?: string;
  /** Client port; 0 picks a free one. */
  clientPort?: number;
  /** The etcd binary. Defaults to `etcd` on the PATH. */
  binary?: string;
  /**
   * Serve clients over TLS with this folder's etcd.pem, and take only client certificates its
   * ca.pem signed (--client-cert-auth). Defaults to plaintext.
   */
  tlsDir?: string;
}

/** Whether an `etcd` binary can be run here (Debian's etcd-server package installs one). */
export function etcdAvailable(binary = 'etcd'): boolean {
  const probe = spawnSync(binary, ['--version'], { stdio: 'ignore' });
  return probe.status === 0;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/health`, { timeout: 1_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('true')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/**
 * A single-member etcd on 127.0.0.1, as a child process: for local clusters and tests. It can be
 * stopped and started again on the same ports and data, as an etcd restart in production would.
 */
export class EtcdServer {
  child: ChildProcess | undefined;
  clientPort = 0;
  private peerPort = 0;
  /** With TLS, /health is asked here in plaintext: the client port wants a certificate. */
  private metricsPort = 0;

  constructor(private readonly options: EtcdServerOptions) {}

  get url(): string {
    return `${this.options.tlsDir ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  private get healthUrl(): string {
    return this.options.tlsDir ? `http://127.0.0.1:${this.metricsPort}` : this.url;
  }

  /** The flags that put etcd's client port behind TLS with client certificates checked. */
  private tlsArgs(): string[] {
    const dir = this.options.tlsDir;
    if (!dir) return [];
    const files = tlsFiles(path.resolve(dir), 'etcd');
    for (const file of Object.values(files))
      if (!fs.existsSync(file))
        throw new TlsConfigError(
          `TLS ${file} is missing: etcd needs it (caviar certs DIR mints it)`,
        );
    return [
      '--cert-file',
      files.cert,
      '--key-file',
      files.key,
      '--trusted-ca-file',
      files.ca,
      '--client-cert-auth',
      '--listen-metrics-urls',
      this.healthUrl,
    ];
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private get logFile(): string {
    return this.options.logFile ?? `${this.options.dataDir}.log`;
  }

  /**
   * Starts etcd and waits until it is healthy; returns its client URL. Ports it picks itself
   * (the first start, without a client port given) are picked again when etcd finds one taken
   * between freePort's check and its own bind, as another process's connection can.
   */
  async start(timeoutMs = 20_000): Promise<string> {
    const picking = !this.clientPort && !this.peerPort;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce(timeoutMs);
      } catch (err) {
        if (!picking || attempt >= 3 || !this.lostPortRace()) throw err;
        this.clientPort = 0;
        this.peerPort = 0;
        this.metricsPort = 0;
      }
    }
  }

  private lostPortRace(): boolean {
    try {
      const text = fs.readFileSync(this.logFile, 'utf8');
      return /bind: address already in use/.test(text.slice(-2_000));
    } catch {
      return false;
    }
  }

  private async startOnce(timeoutMs: number): Promise<string> {
    if (!this.clientPort) this.clientPort = this.options.clientPort || (await freePort());
    if (!this.peerPort) this.peerPort = await freePort();
    if (this.options.tlsDir && !this.metricsPort) this.metricsPort = await freePort();
    fs.mkdirSync(this.options.dataDir, { recursive: true });
    const log = fs.openSync(this.logFile, 'a');
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const [command, args] = diesWithParent(this.options.binary ?? 'etcd', [
      '--name',
      'caviar',
      '--data-dir',
      path.resolve(this.options.dataDir),
      '--listen-client-urls',
      this.url,
      '--advertise-client-urls',
      this.url,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `caviar=${peer}`,
      ...this.tlsArgs(),
    ]);
    this.child = spawn(command, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null)
        throw new Error(`etcd exited with code ${this.child.exitCode}; see its log`);
      if (await healthy(this.healthUrl)) return this.url;
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.stop();
    throw new Error(`etcd did not become healthy on ${this.url} within ${timeoutMs} ms`);
  }

  /** Stops etcd (SIGTERM, then SIGKILL after `graceMs`); its data stays for a later start(). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3_000): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
