import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROLE_NODE_FLAGS } from '../../core/role-process';
import { CAVIAR_BIN } from '../helpers/repo';

/**
 * Several hosts on one machine: a network namespace per host, each with its own mount namespace
 * and its own /dev/shm (so traffic between hosts cannot take the same-host shared-memory path),
 * wired to one bridge that lives in a namespace of its own, with an optional rate limit and delay
 * (tc) on each host's link. Nothing is added to the machine's own namespaces. Needs root.
 */

export interface HostSpec {
  name: string;
  /** tc tbf rate of the host's link, e.g. "1gbit"; none: unlimited. */
  rate?: string;
  /** tc netem delay of the host's link, e.g. "1ms". */
  delay?: string;
}

export interface Host {
  name: string;
  /** The host's address on the bridge. */
  address: string;
  namespace: string;
  /** The host's end of its link, inside its namespace. */
  device: string;
}

/** Why this machine cannot build the test bed, or undefined when it can. */
export function testbedUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'it needs root (network namespaces)';
  for (const tool of ['ip', 'unshare', 'tc'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      return `${tool} is not installed`;
  const probe = `cvprobe${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', probe]);
  spawnSync('ip', ['netns', 'del', probe]);
  if (made.status !== 0) return `ip netns add fails here: ${made.stderr.toString().trim()}`;
  return undefined;
}

function run(...args: string[]): void {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout).trim()}`);
}

const live = new Set<MultiHostBed>();

/** Beds started and not closed yet: the test reaper closes them after a test that timed out. */
export function liveBeds(): ReadonlySet<MultiHostBed> {
  return live;
}

// Namespaces outlive the process that made them: never leave any behind, however the run ends.
process.on('exit', () => {
  for (const bed of live) bed.close();
});

/** What a role prints on stdout once it serves. */
const READY = /^\{"role":/m;

/** Where startCaviar puts the roles: host names of the bed. */
export interface RoleLayout {
  /** etcd (when `ttl` is set) and the coordinator. */
  control: string;
  /** One shard on each. */
  shards: readonly string[];
  /** One worker on each. */
  workers: readonly string[];
  /** Membership TTL in seconds: with it, an etcd on the control host; without, no membership. */
  ttl?: number;
  /** The workers' compute backend; defaults to wasm. */
  backend?: string;
}

/** The test bed: hosts on a bridge, and the processes started on them. */
export class MultiHostBed {
  readonly hosts = new Map<string, Host>();
  private readonly children: ChildProcess[] = [];
  private readonly switchNs: string;
  private readonly subnet: number;

  /** `tag` (a few letters) keeps beds of concurrent runs apart; `logDir` takes every log. */
  constructor(
    private readonly tag: string,
    private readonly specs: readonly HostSpec[],
    readonly logDir: string,
  ) {
    this.switchNs = `cv${tag}-sw`;
    // A /24 per run under 10.213/16, from the pid: two runs at once do not collide.
    this.subnet = 1 + (process.pid % 250);
  }

  start(): this {
    fs.mkdirSync(this.logDir, { recursive: true });
    live.add(this);
    try {
      run('ip', 'netns', 'add', this.switchNs);
      run('ip', '-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
      run('ip', '-n', this.switchNs, 'link', 'set', 'br0', 'up');
      this.specs.forEach((spec, i) => this.addHost(spec, i + 1));
    } catch (err) {
      this.close();
      throw err;
    }
    return this;
  }

  private addHost(spec: HostSpec, n: number): void {
    const namespace = `cv${this.tag}-${spec.name}`;
    const host: Host = {
      name: spec.name,
      address: `10.213.${this.subnet}.${n}`,
      namespace,
      device: 'eth0',
    };
    const port = `p${n}`;
    run('ip', 'netns', 'add', namespace);
    this.hosts.set(spec.name, host);
    run(
      'ip',
      '-n',
      this.switchNs,
      'link',
      'add',
      port,
      'type',
      'veth',
      'peer',
      'eth0',
      'netns',
      namespace,
    );
    run('ip', '-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up');
    run('ip', '-n', namespace, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
    run('ip', '-n', namespace, 'link', 'set', 'eth0', 'up');
    run('ip', '-n', namespace, 'link', 'set', 'lo', 'up');
    // Shaped on both ends of the link: what the host sends, and what the switch sends it.
    this.shape(namespace, 'eth0', spec.rate, spec.delay);
    this.shape(this.switchNs, port, spec.rate);
  }

  /** tc on one end of a link: netem for the delay, with tbf under it for the rate. */
  private shape(namespace: string, dev: string, rate?: string, delay?: string): void {
    const tc = (...args: string[]) =>
      run('ip', 'netns', 'exec', namespace, 'tc', 'qdisc', 'add', 'dev', dev, ...args);
    const tbf = ['tbf', 'rate', rate ?? '', 'burst', '256kb', 'latency', '50ms'];
    if (delay) {
      tc('root', 'handle', '1:', 'netem', 'delay', delay);
      if (rate) tc('parent', '1:1', 'handle', '10:', ...tbf);
    } else if (rate) {
      tc('root', ...tbf);
    }
  }

  host(name: string): Host {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no host ${name} in the test bed`);
    return host;
  }

  /**
   * Starts `command` on `host`, in its network namespace and a mount namespace of its own with a
   * fresh /dev/shm; stdout and stderr go to `log` in the bed's log folder.
   */
  spawn(
    host: string,
    log: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv = {},
  ): ChildProcess {
    const { namespace } = this.host(host);
    const out = fs.openSync(path.join(this.logDir, log), 'a');
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        namespace,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t tmpfs -o size=1g tmpfs /dev/shm && exec "$0" "$@"',
        command,
        ...args,
      ],
      { stdio: ['ignore', out, out], env: { ...process.env, ...env } },
    );
    fs.closeSync(out);
    this.children.push(child);
    return child;
  }

  /** `caviar ARGS` on `host`, as the README's role commands run. */
  caviar(
    host: string,
    log: string,
    args: readonly string[],
    env?: NodeJS.ProcessEnv,
  ): ChildProcess {
    return this.spawn(host, log, process.execPath, [...ROLE_NODE_FLAGS, CAVIAR_BIN, ...args], env);
  }

  /**
   * A caviar cluster laid out as `layout` says, every role started with the README's commands
   * on its host (logs ps-N.log, coordinator.log, worker-N.log, etcd.log); resolves once each
   * serves, with the coordinator's address.
   */
  async startCaviar(layout: RoleLayout): Promise<{ coordinator: string }> {
    const ctl = this.host(layout.control).address;
    let member: string[] = [];
    if (layout.ttl !== undefined) {
      const etcd = `http://${ctl}:2379`;
      const peer = `http://${ctl}:2380`;
      this.spawn(layout.control, 'etcd.log', 'etcd', [
        ...['--name', 'ctl', '--data-dir', path.join(this.logDir, 'etcd-data')],
        ...['--listen-client-urls', etcd, '--advertise-client-urls', etcd],
        ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
        ...['--initial-cluster', `ctl=${peer}`],
      ]);
      await this.waitForLine('etcd.log', /ready to serve client requests/);
      member = ['--etcd', etcd, '--cluster', 'bed', '--member-ttl', String(layout.ttl)];
    }
    const shards = layout.shards.map((host, n) => {
      const at = this.host(host).address;
      this.caviar(host, `ps-${n}.log`, [
        'ps',
        ...member,
        '--id',
        `ps-${n}`,
        '--host',
        at,
        '--port',
        '7100',
      ]);
      return `${at}:7100`;
    });
    for (const n of shards.keys()) await this.waitForLine(`ps-${n}.log`, READY);
    this.caviar(layout.control, 'coordinator.log', [
      ...['coordinator', ...member, '--ps', shards.join(',')],
      ...['--host', ctl, '--port', '7000'],
    ]);
    await this.waitForLine('coordinator.log', READY);
    const coordinator = `${ctl}:7000`;
    layout.workers.forEach((host, n) =>
      this.caviar(host, `worker-${n}.log`, [
        ...['worker', ...member, '--coordinator', coordinator, '--id', `worker-${n}`],
        ...['--backend', layout.backend ?? 'wasm'],
      ]),
    );
    for (const n of layout.workers.keys()) await this.waitForLine(`worker-${n}.log`, READY);
    return { coordinator };
  }

  /** Runs `caviar ARGS` on `host` to its end: its exit code and stdout (stderr goes to `log`). */
  async caviarOutput(
    host: string,
    log: string,
    args: readonly string[],
  ): Promise<{ code: number; stdout: string }> {
    const { namespace } = this.host(host);
    const err = fs.openSync(path.join(this.logDir, log), 'a');
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CAVIAR_BIN, ...args], {
      stdio: ['ignore', 'pipe', err],
    });
    fs.closeSync(err);
    this.children.push(child);
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await this.exited(child);
    return { code, stdout };
  }

  /** Waits until log `log` of the bed has a line matching `pattern` (a role's ready line, say). */
  async waitForLine(log: string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const file = path.join(this.logDir, log);
    for (const end = Date.now() + timeoutMs; Date.now() < end;) {
      const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      if (pattern.test(text)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${log} never printed ${pattern}`);
  }

  /** Resolves with the process's exit code (the test's own deadline bounds it). */
  exited(child: ChildProcess): Promise<number> {
    return new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  }

  /** Takes the host's link down (`up` false) or back up: a cut cable, a switch port gone. */
  link(host: string, up: boolean): void {
    const { namespace, device } = this.host(host);
    run('ip', '-n', namespace, 'link', 'set', device, up ? 'up' : 'down');
  }

  /** Kills everything the bed started (whatever it started itself) and deletes the namespaces. */
  close(): void {
    live.delete(this);
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const host of this.hosts.values()) {
      const pids = spawnSync('ip', ['netns', 'pids', host.namespace], { encoding: 'utf8' });
      for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean))
        spawnSync('kill', ['-9', pid]);
      spawnSync('ip', ['netns', 'del', host.namespace]);
    }
    this.hosts.clear();
    spawnSync('ip', ['netns', 'del', this.switchNs]);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
