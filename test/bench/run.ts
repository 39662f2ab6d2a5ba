/**
 * `npm run bench`: issue 3's benchmark. One JSON line per configuration on stdout, then one
 * summary line; progress goes to stderr.
 *
 *   cluster        caviar train --local on MNIST, mlp:256, batch 128, Adam 1e-3, 2 epochs, for
 *                  workers {1,2} x shards {1,2} x mode {sync,async}, as child processes
 *   single_process gradients() alone in one process, per backend (wasm, cpu, what auto picks)
 *   system_path    the cluster with --backend synthetic (no compute): pull/push/apply rates
 *   wire           one pull + push of the MLP's parameters over gRPC (system-path.ts) against
 *                  the same bytes over bare TCP (loopback.ts): the share of the loopback limit
 *   peer           the same W/mode pairs against ../shared/bench/peer_torch_ps.py (PyTorch
 *                  RPC parameter server), when python3 can import torch; skipped otherwise;
 *                  then 2 workers for 10 epochs, where start-up weighs less
 *   warm           the 2-worker, 1-shard cluster figure on a cluster already running (caviar
 *                  up, one untimed trial first), as a sweep's later trials see it
 *   convnets       LeNet-5 and a small BatchNorm ResNet, caviar (1 and 2 workers) against torch on
 *                  the same layer graph (single, DDP), run by run alternately (convnets.ts)
 *   augment        ms per MNIST batch of 128 of each augmentation on the worker (augment.ts)
 *   large          a 140M-parameter trial on 2 workers and 2 shards (large-model.ts); only when
 *                  asked for with --only, since it needs about 8 GB and minutes
 *
 * Options: --runs N (repeat each cluster, synthetic and peer run; median and min/max), --quick
 * (workers 2 shards 2 async, single-process, synthetic, wire), --only with a comma-separated list of sections.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import type { TrainSummary } from '../../client/summary';
import { REPO_ROOT, CAVIAR_BIN } from '../helpers/repo';
import type { SingleProcessResult } from './single-process';
import { medianIndex, round, spreadOf } from './stats';
import { benchKernels } from './kernels';
import { benchConvnets } from './convnets';
import { benchAugment } from './augment';
import {
  failure,
  killChildrenOnSignal,
  lastJsonLine,
  mnistDigitsDir,
  runChild,
  torchPython,
} from './children';
import { largeModel } from './large-model';
import { ROLE_NODE_FLAGS } from '../../core/role-process';

const SECTIONS = [
  'cluster',
  'single',
  'synthetic',
  'wire',
  'peer',
  'kernels',
  'convnets',
  'augment',
  'sweep',
  'warm',
  'large',
] as const;
type Section = (typeof SECTIONS)[number];
type Mode = 'sync' | 'async';

const MODEL = 'mlp:256';
const BATCH = 128;
const EPOCHS = 2;
/**
 * The peer comparison also runs this many epochs: in 2 epochs both sides spend much of their time
 * starting up (loading data, first connections, JIT), so the longer run is closer to how fast
 * each trains once running.
 */
const LONG_EPOCHS = 10;
/** Epochs of each convnets run: long enough that start-up and evaluation weigh little. */
const CONVNET_EPOCHS = 4;
/** `caviar train` flags shared by every cluster run (issue 3's configuration). */
const TRAIN_ARGS = [
  '--dataset',
  'mnist',
  '--model',
  MODEL,
  '--batch',
  String(BATCH),
  '--optimizer',
  'adam',
  '--lr',
  '1e-3',
];
const SINGLE_PROCESS_JS = path.join(__dirname, 'single-process.js');
const SYSTEM_PATH_JS = path.join(__dirname, 'system-path.js');
const LOOPBACK_JS = path.join(__dirname, 'loopback.js');
const PEER_SCRIPT = path.resolve(REPO_ROOT, '..', 'shared', 'bench', 'peer_torch_ps.py');
/** The peer has one parameter-server process; caviar's side of the comparison gets one shard. */
const PEER_SHARDS = 1;

interface BenchOptions {
  runs: number;
  quick: boolean;
  only: Section[];
  timeoutS: number;
}

interface ClusterConfig {
  workers: number;
  shards: number;
  mode: Mode;
  backend: string;
  /** Defaults to EPOCHS. */
  epochs?: number;
}

// ---------------------------------------------------------------------------------------------
// output

const lines: Record<string, unknown>[] = [];
const errors: string[] = [];

function emit(line: Record<string, unknown>): void {
  lines.push(line);
  process.stdout.write(JSON.stringify(line) + '\n');
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// the wire: one pull + push of the MLP's parameters over gRPC, against bare TCP

interface WireLine {
  round_trips_per_s: number;
  cpu_ms_per_round_trip: Record<string, number>;
}

/** Runs a bench script --runs times under the role processes' Node flags; its JSON lines. */
async function wireScript(
  script: string,
  bench: string,
  o: BenchOptions,
  args: string[] = [],
  label = bench,
): Promise<WireLine[]> {
  const out: WireLine[] = [];
  for (let i = 0; i < o.runs; i++) {
    log(`wire: ${label} (run ${i + 1}/${o.runs})`);
    const r = await runChild(process.execPath, [...ROLE_NODE_FLAGS, script, ...args], o.timeoutS);
    try {
      if (r.code !== 0) throw new Error(failure(r, bench));
      const line = lastJsonLine<WireLine & Record<string, unknown>>(
        r.stdout,
        (v) => v.bench === bench,
      );
      emit({ ...line, bench: `wire_${label}`, run: i + 1 });
      out.push(line);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      emit({ bench: `wire_${label}`, error: message });
      errors.push(`${label}: ${message}`);
    }
  }
  return out;
}

/**
 * The system path's share of the loopback limit: caviar's gRPC round trips per second between
 * two processes (the shard applying Adam each time), as Pull + Push (sync mode) and as one
 * PushPull (async mode), over bare TCP round trips of the same bytes, each measured --runs times.
 */
async function wire(o: BenchOptions): Promise<void> {
  const grpc = await wireScript(SYSTEM_PATH_JS, 'system_path', o);
  const pushPull = await wireScript(
    SYSTEM_PATH_JS,
    'system_path',
    o,
    ['--push-pull'],
    'system_path_push_pull',
  );
  const sameHost = await wireScript(
    SYSTEM_PATH_JS,
    'system_path',
    o,
    ['--push-pull', '--same-host'],
    'system_path_same_host',
  );
  const tcp = await wireScript(LOOPBACK_JS, 'loopback', o);
  if (!grpc.length || !pushPull.length || !tcp.length) return;
  const medianRun = (lines: WireLine[]): WireLine =>
    lines[medianIndex(lines.map((l) => l.round_trips_per_s))];
  const g = spreadOf(grpc.map((l) => l.round_trips_per_s));
  const pp = spreadOf(pushPull.map((l) => l.round_trips_per_s));
  const t = spreadOf(tcp.map((l) => l.round_trips_per_s));
  const sh = sameHost.length ? spreadOf(sameHost.map((l) => l.round_trips_per_s)) : undefined;
  emit({
    bench: 'wire',
    model: MODEL,
    grpc_round_trips_per_s: g.median,
    grpc_spread: g.spread,
    tcp_round_trips_per_s: t.median,
    tcp_spread: t.spread,
    share_of_loopback: round(g.median / t.median, 4),
    grpc_push_pull_round_trips_per_s: pp.median,
    grpc_push_pull_spread: pp.spread,
    push_pull_share_of_loopback: round(pp.median / t.median, 4),
    grpc_cpu_ms_per_round_trip: medianRun(grpc).cpu_ms_per_round_trip,
    grpc_push_pull_cpu_ms_per_round_trip: medianRun(pushPull).cpu_ms_per_round_trip,
    tcp_cpu_ms_per_round_trip: medianRun(tcp).cpu_ms_per_round_trip,
    // PushPull with the values in shared memory: not bound by the loopback limit at all.
    ...(sh
      ? {
          same_host_round_trips_per_s: sh.median,
          same_host_spread: sh.spread,
          same_host_over_loopback: round(sh.median / t.median, 4),
          same_host_cpu_ms_per_round_trip: medianRun(sameHost).cpu_ms_per_round_trip,
        }
      : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// single process

async function singleProcess(
  backend: string,
  seconds: number,
  timeoutS: number,
): Promise<SingleProcessResult | undefined> {
  log(`single process: ${backend}, ${seconds} s of gradients() on ${MODEL}, batch ${BATCH}`);
  const r = await runChild(
    process.execPath,
    [
      SINGLE_PROCESS_JS,
      '--backend',
      backend,
      '--model',
      MODEL,
      '--batch',
      String(BATCH),
      '--seconds',
      String(seconds),
    ],
    timeoutS,
  );
  try {
    if (r.code !== 0) throw new Error(failure(r, 'single-process'));
    const result = lastJsonLine<SingleProcessResult>(r.stdout, (v) => v.bench === 'single_process');
    emit({ ...result });
    return result;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    emit({ bench: 'single_process', requested: backend, model: MODEL, error: message });
    errors.push(`single_process ${backend}: ${message}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// cluster runs

interface TrainRun {
  summary?: TrainSummary;
  wallS: number;
  error?: string;
}

async function trainOnce(cfg: ClusterConfig, timeoutS: number): Promise<TrainRun> {
  return runTrain(
    [
      '--local',
      '--workers',
      String(cfg.workers),
      '--shards',
      String(cfg.shards),
      '--backend',
      cfg.backend,
    ],
    cfg.mode,
    cfg.epochs ?? EPOCHS,
    timeoutS,
  );
}

/** One `caviar train --json` of the bench's trial on the cluster `where` names, and its summary. */
async function runTrain(
  where: string[],
  mode: Mode,
  epochs: number,
  timeoutS: number,
): Promise<TrainRun> {
  const args = [CAVIAR_BIN, 'train', ...where, ...TRAIN_ARGS];
  args.push('--epochs', String(epochs), '--mode', mode, '--json');
  const r = await runChild(process.execPath, args, timeoutS);
  try {
    const summary = lastJsonLine<TrainSummary>(r.stdout, (v) => 'trial' in v);
    if (r.code !== 0 || summary.status !== 'completed') {
      return {
        summary,
        wallS: r.wallS,
        error: `trial ${summary.status}${summary.error ? `: ${summary.error}` : ''}`,
      };
    }
    return { summary, wallS: r.wallS };
  } catch {
    return { wallS: r.wallS, error: failure(r, 'caviar train') };
  }
}

const label = (c: ClusterConfig): string =>
  `workers ${c.workers}, shards ${c.shards}, ${c.mode}, backend ${c.backend}, ${c.epochs ?? EPOCHS} epochs`;

async function trainRuns(cfg: ClusterConfig, o: BenchOptions): Promise<TrainRun[]> {
  const runs: TrainRun[] = [];
  for (let i = 0; i < o.runs; i++) {
    log(`cluster: ${label(cfg)} (run ${i + 1}/${o.runs})`);
    const run = await trainOnce(cfg, o.timeoutS);
    if (run.error) log(`  failed: ${run.error}`);
    else log(`  ${run.summary!.examples_per_s} examples/s in ${run.summary!.seconds} s`);
    runs.push(run);
  }
  return runs;
}

/**
 * Where the workers' wall time went: each phase's seconds (summed over workers) over
 * workers × trial seconds; `waiting` is the rest (asking for work, the sync barrier handed out
 * by the coordinator, idling while another worker evaluates). In sync mode a pull waits for the
 * step's parameters, so part of the barrier shows up under `pull`. Shards: optimizer seconds.
 */
function breakdown(s: TrainSummary, workers: number, shards: number): Record<string, number> {
  const wall = workers * s.seconds;
  const frac = (x: number): number => (wall > 0 ? round(x / wall, 3) : 0);
  const compute = frac(s.time.compute);
  const pull = frac(s.time.pull);
  const push = frac(s.time.push);
  const evalFrac = frac(s.time.eval);
  return {
    compute,
    pull,
    push,
    eval: evalFrac,
    waiting: round(Math.max(0, 1 - compute - pull - push - evalFrac), 3),
    apply_s: s.time.apply,
    apply_fraction_of_shards: s.seconds > 0 ? round(s.time.apply / (shards * s.seconds), 3) : 0,
  };
}

/** The fields every cluster-like line shares: the median run's numbers and the spread. */
function aggregate(
  cfg: ClusterConfig,
  runs: TrainRun[],
): { ok: TrainRun[]; fields: Record<string, unknown>; median?: TrainSummary } {
  const ok = runs.filter((r) => r.summary && !r.error);
  const base = {
    workers: cfg.workers,
    shards: cfg.shards,
    mode: cfg.mode,
    epochs: cfg.epochs ?? EPOCHS,
    runs: runs.length,
    failed_runs: runs.length - ok.length,
  };
  if (ok.length === 0) {
    return { ok, fields: { ...base, error: runs[0]?.error ?? 'no runs' } };
  }
  const rates = ok.map((r) => r.summary!.examples_per_s);
  const s = ok[medianIndex(rates)].summary!;
  const spread = spreadOf(rates);
  const wall = ok[medianIndex(rates)].wallS;
  return {
    ok,
    median: s,
    fields: {
      ...base,
      backend: s.backend,
      examples_per_s: spread.median,
      examples_per_s_min: spread.min,
      examples_per_s_max: spread.max,
      spread: spread.spread,
      examples_per_s_runs: spread.runs,
      seconds: s.seconds,
      process_wall_s: round(wall, 2),
      examples: s.examples,
      val_accuracy: s.val_accuracy,
      val_loss: s.val_loss,
      batches_scheduled: s.batches_scheduled,
      batches_applied: s.batches_applied,
      batches_requeued: s.batches_requeued,
      time: s.time,
      breakdown: breakdown(s, cfg.workers, cfg.shards),
      ...(runs.some((r) => r.error) ? { run_errors: runs.flatMap((r) => r.error ?? []) } : {}),
    },
  };
}

async function clusterConfig(
  cfg: ClusterConfig,
  o: BenchOptions,
  single: Map<string, number>,
): Promise<void> {
  const runs = await trainRuns(cfg, o);
  const { fields } = aggregate(cfg, runs);
  if (fields.error !== undefined) {
    errors.push(`cluster ${label(cfg)}: ${String(fields.error)}`);
    emit({ bench: 'cluster', ...fields });
    return;
  }
  const rate = fields.examples_per_s as number;
  // The cluster names its workers' backend(s); a mixed cluster has no single compute limit.
  const limit = single.get(fields.backend as string) ?? null;
  emit({
    bench: 'cluster',
    ...fields,
    single_process_examples_per_s: limit,
    scaling_efficiency: limit ? round(rate / (cfg.workers * limit), 3) : null,
  });
}

async function systemPath(mode: Mode, o: BenchOptions): Promise<void> {
  const cfg: ClusterConfig = { workers: 2, shards: 2, mode, backend: 'synthetic' };
  const runs = await trainRuns(cfg, o);
  const { fields, median: s } = aggregate(cfg, runs);
  if (!s) {
    errors.push(`system_path ${label(cfg)}: ${String(fields.error)}`);
    emit({ bench: 'system_path', ...fields });
    return;
  }
  // One pull and one push (to every shard, in parallel) per train task; one pull per evaluation.
  const trainTasks = s.batches_scheduled + s.batches_requeued;
  const pulls = trainTasks + s.epochs;
  const per = (n: number): number => (s.seconds > 0 ? round(n / s.seconds, 1) : 0);
  emit({
    bench: 'system_path',
    ...fields,
    pushes_per_s: per(trainTasks),
    pulls_per_s: per(pulls),
    applies_per_s: per(s.batches_applied),
    mean_pull_ms: round((1000 * s.time.pull) / pulls, 2),
    mean_push_ms: round((1000 * s.time.push) / trainTasks, 2),
    mean_apply_ms: round((1000 * s.time.apply) / Math.max(1, s.batches_applied), 2),
  });
}

// ---------------------------------------------------------------------------------------------
// the PyTorch peer

interface PeerResult {
  examples_per_s: number;
  seconds: number;
  examples: number;
  val_accuracy: number;
}

async function peerOnce(
  python: string,
  workers: number,
  mode: Mode,
  epochs: number,
  timeoutS: number,
): Promise<PeerResult> {
  const args = [PEER_SCRIPT, mnistDigitsDir(), String(workers), String(epochs), mode, `${BATCH}`];
  const r = await runChild(python, args, timeoutS);
  if (r.code !== 0) throw new Error(failure(r, 'peer_torch_ps.py'));
  return lastJsonLine<PeerResult>(r.stdout, (v) => v.peer !== undefined);
}

async function peerPair(
  python: string,
  workers: number,
  mode: Mode,
  epochs: number,
  o: BenchOptions,
): Promise<void> {
  const cfg: ClusterConfig = { workers, shards: PEER_SHARDS, mode, backend: 'auto', epochs };
  const caviar: TrainRun[] = [];
  const peer: PeerResult[] = [];
  const peerErrors: string[] = [];
  // Alternate caviar and the peer, run by run, so both see the same machine conditions.
  for (let i = 0; i < o.runs; i++) {
    log(`peer: caviar ${label(cfg)} (run ${i + 1}/${o.runs})`);
    const c = await trainOnce(cfg, o.timeoutS);
    if (c.error) log(`  failed: ${c.error}`);
    else log(`  ${c.summary!.examples_per_s} examples/s`);
    caviar.push(c);
    log(
      `peer: pytorch rpc ps, workers ${workers}, ${mode}, ${epochs} epochs (run ${i + 1}/${o.runs})`,
    );
    try {
      const p = await peerOnce(python, workers, mode, epochs, o.timeoutS);
      log(`  ${p.examples_per_s} examples/s`);
      peer.push(p);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`  failed: ${message}`);
      peerErrors.push(message);
    }
  }
  const { fields } = aggregate(cfg, caviar);
  const peerRates = peer.map((p) => p.examples_per_s);
  const peerSpread = peer.length ? spreadOf(peerRates) : undefined;
  const p = peer.length ? peer[medianIndex(peerRates)] : undefined;
  const caviarRate = typeof fields.examples_per_s === 'number' ? fields.examples_per_s : null;
  const peerRate = peerSpread?.median ?? null;
  emit({
    bench: 'peer',
    workers,
    mode,
    epochs,
    python,
    caviar_shards: PEER_SHARDS,
    peer_ps_processes: 1,
    caviar_backend: fields.backend ?? null,
    caviar_examples_per_s: caviarRate,
    caviar_examples_per_s_runs: fields.examples_per_s_runs ?? [],
    caviar_seconds: fields.seconds ?? null,
    caviar_val_accuracy: fields.val_accuracy ?? null,
    peer_examples_per_s: peerRate,
    peer_examples_per_s_runs: peerSpread?.runs ?? [],
    peer_seconds: p?.seconds ?? null,
    peer_examples: p?.examples ?? null,
    peer_val_accuracy: p?.val_accuracy ?? null,
    ratio: caviarRate !== null && peerRate ? round(caviarRate / peerRate, 4) : null,
    ...(fields.error !== undefined ? { caviar_error: fields.error } : {}),
    ...(peerErrors.length ? { peer_errors: peerErrors } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// main

function parseOptions(argv: string[]): BenchOptions {
  const program = new Command('bench')
    .description("caviar's benchmark (issue 3): one JSON line per configuration on stdout")
    .option(
      '--runs <n>',
      'repeat each cluster, synthetic and peer run N times',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1)
          throw new InvalidArgumentError('expected an integer ≥ 1');
        return n;
      },
      1,
    )
    .option('--quick', 'only workers 2 shards 2 async, single-process and synthetic', false)
    .option('--only <sections>', `comma-separated: ${SECTIONS.join(',')}`, (v) => {
      const list = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const s of list) {
        if (!(SECTIONS as readonly string[]).includes(s))
          throw new InvalidArgumentError(`unknown section "${s}"; expected ${SECTIONS.join(',')}`);
      }
      return list as Section[];
    })
    .option('--timeout-s <s>', 'time limit of one child process', (v) => Number(v), 600)
    .parse(argv);
  const opts = program.opts<{
    runs: number;
    quick: boolean;
    only?: Section[];
    timeoutS: number;
  }>();
  const only =
    opts.only ??
    (opts.quick
      ? ['cluster', 'single', 'synthetic', 'wire']
      : SECTIONS.filter((s) => s !== 'large'));
  return { runs: opts.runs, quick: opts.quick, only, timeoutS: opts.timeoutS };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv);
  killChildrenOnSignal();
  const started = performance.now();
  const has = (s: Section): boolean => o.only.includes(s);
  log(
    `sections ${o.only.join(',')}, runs ${o.runs}${o.quick ? ', quick' : ''}; ${os.cpus().length} cpu(s)`,
  );

  // 1. The compute limit, per backend, first: the cluster lines divide by it.
  const single = new Map<string, number>();
  const record = (r: SingleProcessResult | undefined, requested: string): void => {
    if (!r) return;
    if (!single.has(r.backend) || requested !== 'auto') single.set(r.backend, r.examples_per_s);
    single.set(`requested:${requested}`, r.examples_per_s);
  };
  if (has('single')) {
    record(await singleProcess('wasm', 2, o.timeoutS), 'wasm');
    record(await singleProcess('cpu', 1, o.timeoutS), 'cpu');
    record(await singleProcess('auto', 2, o.timeoutS), 'auto');
  } else if (has('cluster')) {
    record(await singleProcess('auto', 2, o.timeoutS), 'auto');
  }

  // 2. The cluster.
  if (has('cluster')) {
    const configs: ClusterConfig[] = o.quick
      ? [{ workers: 2, shards: 2, mode: 'async', backend: 'auto' }]
      : [1, 2].flatMap((workers) =>
          [1, 2].flatMap((shards) =>
            (['sync', 'async'] as const).map((mode) => ({
              workers,
              shards,
              mode,
              backend: 'auto',
            })),
          ),
        );
    for (const cfg of configs) await clusterConfig(cfg, o, single);
  }

  // 3. The system path alone.
  if (has('synthetic')) {
    for (const mode of ['async', 'sync'] as const) await systemPath(mode, o);
  }

  // 3b. The wire alone, against bare TCP.
  if (has('wire')) await wire(o);

  // 4. The PyTorch peer.
  if (has('peer')) {
    if (!fs.existsSync(PEER_SCRIPT)) {
      emit({ bench: 'peer', skipped: `${PEER_SCRIPT} not found` });
    } else {
      const python = torchPython();
      if (!python) emit({ bench: 'peer', skipped: 'python3-torch not installed' });
      else {
        for (const workers of [1, 2])
          for (const mode of ['sync', 'async'] as const)
            await peerPair(python, workers, mode, EPOCHS, o);
        for (const mode of ['sync', 'async'] as const)
          await peerPair(python, 2, mode, LONG_EPOCHS, o);
      }
    }
  }

  // 5. Single-process gradient throughput per compute backend (issue 7), in this process.
  if (has('kernels'))
    for (const row of await benchKernels()) emit(row as unknown as Record<string, unknown>);

  // 5b. Augmentation's cost per batch, against the kernels' compute per step.
  if (has('augment')) for (const row of await benchAugment()) emit(row);

  // 5c. ConvNets against torch on the same layer graphs.
  if (has('convnets'))
    await benchConvnets({
      runs: o.runs,
      epochs: CONVNET_EPOCHS,
      timeoutS: o.timeoutS,
      python: torchPython(),
      emit,
      log,
    });

  // 6. Caviar against panda: a 16-trial sweep, 4 at a time, against the same trials one by one.
  if (has('sweep')) await sweepVersusSequential(o);

  // 7. The cluster figure on a cluster that is already running.
  if (has('warm')) await warmCluster(o);

  // 8. A 140M-parameter model.
  if (has('large')) {
    try {
      emit(await largeModel(o.timeoutS, log, torchPython()));
    } catch (err) {
      errors.push(`large: ${(err as Error).message}`);
    }
  }

  const pick = (bench: string): Record<string, unknown>[] => lines.filter((l) => l.bench === bench);
  emit({
    bench: 'summary',
    seconds: round((performance.now() - started) / 1000, 1),
    runs: o.runs,
    quick: o.quick,
    only: o.only,
    machine: {
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? '',
      memory_gb: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    single_process: Object.fromEntries(
      pick('single_process').map((l) => [String(l.requested), l.examples_per_s ?? null]),
    ),
    auto_backend: pick('single_process').find((l) => l.requested === 'auto')?.backend ?? null,
    cluster: pick('cluster').map((l) => ({
      workers: l.workers,
      shards: l.shards,
      mode: l.mode,
      examples_per_s: l.examples_per_s ?? null,
      spread: l.spread ?? null,
      scaling_efficiency: l.scaling_efficiency ?? null,
    })),
    system_path: pick('system_path').map((l) => ({
      mode: l.mode,
      examples_per_s: l.examples_per_s ?? null,
      applies_per_s: l.applies_per_s ?? null,
    })),
    peer: pick('peer').map((l) =>
      l.skipped
        ? { skipped: l.skipped }
        : { workers: l.workers, mode: l.mode, epochs: l.epochs, ratio: l.ratio ?? null },
    ),
    wire: pick('wire')[0] ?? null,
    warm_cluster: pick('warm_cluster').map((l) => ({
      mode: l.mode,
      examples_per_s: l.examples_per_s ?? null,
      spread: l.spread ?? null,
    })),
    sweep: pick('sweep')[0] ?? null,
    large: pick('large')[0] ?? null,
    errors,
  });
  return errors.length ? 1 : 0;
}

/** A long-running local cluster (`caviar up`, no etcd) for benches that submit many trials. */
async function upCluster(
  workers: number,
  shards: number,
): Promise<{ coordinator: string; stop(): void }> {
  const up = spawn(
    process.execPath,
    [
      CAVIAR_BIN,
      'up',
      '--workers',
      String(workers),
      '--shards',
      String(shards),
      '--etcd',
      'none',
      '--json',
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    const ready = await new Promise<{ coordinator: string }>((resolve, reject) => {
      let out = '';
      up.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]) as { coordinator: string });
      });
      up.once('exit', () => reject(new Error('caviar up exited before it was ready')));
    });
    return { coordinator: ready.coordinator, stop: () => up.kill('SIGTERM') };
  } catch (err) {
    up.kill('SIGKILL');
    throw err;
  }
}

/**
 * The cluster figure once the cluster runs: `caviar up` with 2 workers and 1 shard (the peer's
 * shape), one untimed trial, then the 2-epoch trial of the cluster section --runs times per
 * mode. A fresh cluster spends its first thousand batches or so with V8 still compiling the
 * hot paths (grpc-js, protobufjs, tfjs); a sweep's trials after the first run warm.
 */
async function warmCluster(o: BenchOptions): Promise<void> {
  const up = await upCluster(2, PEER_SHARDS);
  try {
    const train = (mode: Mode): Promise<TrainRun> =>
      runTrain(['--coordinator', up.coordinator], mode, EPOCHS, o.timeoutS);
    log('warm cluster: 2 workers, 1 shard; one untimed trial');
    await train('async');
    for (const mode of ['sync', 'async'] as const) {
      const runs: TrainRun[] = [];
      for (let i = 0; i < o.runs; i++) {
        log(`warm cluster: ${mode} (run ${i + 1}/${o.runs})`);
        runs.push(await train(mode));
      }
      const { fields } = aggregate(
        { workers: 2, shards: PEER_SHARDS, mode, backend: 'auto' },
        runs,
      );
      if (fields.error !== undefined) errors.push(`warm cluster ${mode}: ${String(fields.error)}`);
      emit({ bench: 'warm_cluster', ...fields });
    }
  } finally {
    up.stop();
  }
}

/** The 16 MNIST trials of the sweep bench: the same seed gives the same trials at any parallelism. */
function sweepSpec(parallel: number, name = `bench-parallel-${parallel}`, trials = 16): string {
  return [
    `name: ${name}`,
    'dataset: { source: mnist }',
    'model: { type: mlp, hidden: [128] }',
    'train: { optimizer: adam, lr: 1.0e-3, batch: 128, epochs: 2, mode: async, seed: 1 }',
    'search:',
    '  lr: { log_uniform: [1.0e-4, 1.0e-2] }',
    '  hidden: { choice: [[64], [128], [256]] }',
    '  batch: { choice: [64, 128] }',
    `budget: { trials: ${trials}, parallel: ${parallel}, seed: 11 }`,
    'objective: { maximize: val_accuracy }',
  ].join('\n');
}

/**
 * One local cluster (`caviar up`), then the same 16 trials as a sweep, 4 at a time (caviar) and
 * one after another (panda), in alternating order for max(2, --runs) rounds: medians of the wall
 * times, their ratio, the best accuracies. An untimed 8-trial sweep runs first: a fresh cluster
 * spends its first seconds warming up (V8 compiling the hot paths of grpc-js, protobufjs and tfjs).
 */
async function sweepVersusSequential(o: BenchOptions): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-bench-sweep-'));
  const up = await upCluster(2, 2);
  try {
    const result: Record<string, unknown> = {
      bench: 'sweep',
      trials: 16,
      workers: 2,
      shards: 2,
      epochs: 2,
    };
    const sweep = async (parallel: number, name: string, trials = 16) => {
      const file = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(file, sweepSpec(parallel, name, trials));
      const r = await runChild(
        process.execPath,
        [CAVIAR_BIN, 'sweep', file, '--coordinator', up.coordinator, '--json'],
        o.timeoutS,
      );
      if (r.code !== 0) throw new Error(failure(r, `sweep ${name}`));
      return lastJsonLine<{ seconds: number; best: { val_accuracy: number } | null }>(
        r.stdout,
        (v) => 'sweep' in v,
      );
    };
    const seconds: Record<number, number[]> = { 1: [], 4: [] };
    const best: Record<number, number[]> = { 1: [], 4: [] };
    try {
      log('sweep: warm-up, 8 trials');
      await sweep(4, 'bench-warm-up', 8);
      // The order alternates (4 then 1, 1 then 4, ...): the cluster keeps getting faster for a
      // while, and whichever sweep ran first used to pay for it (reported as 4 at a time being
      // a quarter slower).
      const rounds = Math.max(2, o.runs);
      for (let k = 0; k < rounds; k++) {
        for (const parallel of k % 2 === 0 ? [4, 1] : [1, 4]) {
          log(`sweep: 16 trials, parallel ${parallel} (round ${k + 1}/${rounds})`);
          const s = await sweep(parallel, `bench-parallel-${parallel}-${k}`);
          seconds[parallel].push(s.seconds);
          best[parallel].push(s.best?.val_accuracy ?? NaN);
        }
      }
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
      return;
    }
    const parallel = spreadOf(seconds[4], 2);
    const sequential = spreadOf(seconds[1], 2);
    Object.assign(result, {
      rounds: seconds[4].length,
      parallel: 4,
      parallel_seconds: parallel.median,
      parallel_seconds_runs: parallel.runs,
      sequential_seconds: sequential.median,
      sequential_seconds_runs: sequential.runs,
      best_val_accuracy: Math.max(...best[4]),
      sequential_best_val_accuracy: Math.max(...best[1]),
      speedup: round(sequential.median / parallel.median, 2),
    });
    emit(result);
  } finally {
    up.stop();
  }
}

// `node --test dist/test/` runs every file under dist/test; a bench must not start there.
if (require.main === module && !process.env.NODE_TEST_CONTEXT) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
