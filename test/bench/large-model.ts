/**
 * `npm run bench -- --only large`: a 140M-parameter trial (mlp:16000,8000, batch 64, Adam, one
 * epoch of MNIST) on a local cluster of 2 workers and 2 shards, with what the large-models issue
 * asks of it: examples/s, seconds per batch split into compute / push / pull / apply, peak private
 * memory per role, membership lease losses, the event-loop delay p99 per role (prom-client's
 * nodejs_eventloop_lag_p99_seconds, which measures with perf_hooks monitorEventLoopDelay, scraped
 * every second), and the push + pull bytes/s against bare TCP on loopback with 8 MB messages.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalCluster, type ClusterProcess } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { parameterCount, modelParams, parseModelSpec } from '../../core/model-spec';
import type { TrialStatus__Output } from '../../proto/gen/caviar/v1/TrialStatus';
import { torchPython } from './children';
import { messageOf, type BenchReport, type SectionOptions } from './report';
import { round } from './stats';
import { follow } from '../../client/follow';
import { REPO_ROOT } from '../helpers/repo';
import { LEASE_LOST_LOG } from '../helpers/cluster';
import { procStatusBytes } from '../helpers/processes';
import { EventLoopWatch } from '../helpers/event-loop';

export const LARGE_MODEL = 'mlp:16000,8000';
const LARGE_BATCH = 64;
const LOOPBACK_JS = path.join(__dirname, 'loopback.js');
const TORCH_PEER = path.join(REPO_ROOT, 'test', 'bench', 'peer_torch_large.py');

/** 0 once the process is gone, so a peak is never NaN. */
const rssAnonMb = (pid: number): number => (procStatusBytes(pid, 'RssAnon') || 0) / 2 ** 20;

function leaseLosses(logDir: string): number {
  let n = 0;
  for (const file of fs.readdirSync(logDir).filter((f) => f.endsWith('.log'))) {
    const log = fs.readFileSync(path.join(logDir, file), 'utf8');
    n += (log.match(new RegExp(LEASE_LOST_LOG.source, 'g')) ?? []).length;
  }
  return n;
}

/** Bare TCP on loopback, 8 MB each way per round trip: the bytes/s limit the transfers face. */
function loopbackBytesPerS(): number | undefined {
  const r = spawnSync(
    process.execPath,
    [LOOPBACK_JS, '--bytes', String(8 << 20), '--seconds', '3'],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  const line = r.stdout.trim().split('\n').pop();
  try {
    return (JSON.parse(line ?? '') as { mb_per_s_each_way: number }).mb_per_s_each_way * 1e6;
  } catch {
    return undefined;
  }
}

/** The same model's forward and backward in one torch process (one thread), when torch imports. */
function torchComputeExamplesPerS(python: string | undefined): number | undefined {
  if (!python || !fs.existsSync(TORCH_PEER)) return undefined;
  const r = spawnSync(python, [TORCH_PEER, '16000,8000', String(LARGE_BATCH), '10'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  try {
    return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { examples_per_s: number })
      .examples_per_s;
  } catch {
    return undefined;
  }
}

/** The section: its line, or an error when the trial or its cluster fails. */
export async function benchLarge(o: SectionOptions, report: BenchReport): Promise<void> {
  try {
    report.emit(await largeModel(o.timeoutS, report.log, torchPython()));
  } catch (err) {
    report.fail(`large: ${messageOf(err)}`);
  }
}

/** `python` is one that imports torch, for the reference figure (none: the figure is null). */
async function largeModel(
  timeoutS: number,
  log: (message: string) => void,
  python: string | undefined,
): Promise<Record<string, unknown>> {
  const params = parameterCount(modelParams(parseModelSpec(LARGE_MODEL), [784], 10));
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'caviar-bench-large-'));
  log(`large: ${LARGE_MODEL} (${params} parameters), batch ${LARGE_BATCH}; logs in ${logDir}`);
  await using cluster = await new LocalCluster({
    workers: 2,
    shards: 2,
    backend: 'auto',
    logDir,
    etcd: 'auto',
  }).start();
  const roles: ClusterProcess[] = ['coordinator', 'ps-0', 'ps-1', 'worker-0', 'worker-1'].map(
    (id) => cluster.process(id),
  );
  const peakMb = new Map<string, number>(roles.map((r) => [r.id, 0]));
  const lagWatch = new EventLoopWatch(roles);
  let lagP99 = new Map<string, number>();
  const sampler = setInterval(() => {
    for (const r of roles) peakMb.set(r.id, Math.max(peakMb.get(r.id)!, rssAnonMb(r.pid)));
  }, 200);
  let final: TrialStatus__Output;
  const started = performance.now();
  try {
    const client = new CoordinatorClient(cluster.coordinator);
    const submitted = await client.submitTrial({
      dataset: 'mnist',
      model: LARGE_MODEL,
      batch: LARGE_BATCH,
      epochs: 1,
      mode: 'async',
      optimizer: { kind: 'adam', lr: 1e-4 },
    });
    let timer: NodeJS.Timeout | undefined;
    final = await Promise.race([
      follow(
        submitted,
        () => client.watchTrial(submitted.trial),
        () => undefined,
      ),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not done in ${timeoutS} s`)), timeoutS * 1000);
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    clearInterval(sampler);
    lagP99 = lagWatch.stop();
  }
  const wallS = (performance.now() - started) / 1000;
  const batches = Number(final.batches_applied);
  const workers = 2;
  const perBatch = (s: number): number => (batches > 0 ? round(s / batches, 3) : 0);
  // Every batch pulls and pushes the whole model once: 2 x params x 4 bytes.
  const transferS = final.push_seconds + final.pull_seconds;
  const bytesPerS = transferS > 0 ? (batches * 2 * params * 4) / transferS : 0;
  const loopback = loopbackBytesPerS();
  const torch = torchComputeExamplesPerS(python);
  const computeExamplesPerS =
    final.compute_seconds > 0 ? (batches * LARGE_BATCH) / final.compute_seconds : 0;
  return {
    bench: 'large',
    model: LARGE_MODEL,
    params,
    batch: LARGE_BATCH,
    workers,
    shards: 2,
    status: final.status,
    error: final.error || undefined,
    batches_applied: batches,
    batches_scheduled: Number(final.batches_scheduled),
    wall_s: round(wallS, 1),
    examples_per_s: round((batches * LARGE_BATCH) / wallS, 1),
    // Worker seconds per batch (each batch runs on one worker), and the shards' apply per batch.
    seconds_per_batch: {
      compute: perBatch(final.compute_seconds),
      push: perBatch(final.push_seconds),
      pull: perBatch(final.pull_seconds),
      apply: perBatch(final.apply_seconds),
    },
    peak_private_mb: Object.fromEntries([...peakMb].map(([id, mb]) => [id, round(mb, 0)])),
    event_loop_p99_ms: Object.fromEntries([...lagP99].map(([id, s]) => [id, round(s * 1000, 1)])),
    lease_losses: leaseLosses(logDir),
    pushes_refused: final.pushes_refused,
    push_pull_bytes_per_s: round(bytesPerS, 0),
    loopback_bytes_per_s: loopback === undefined ? null : round(loopback, 0),
    share_of_loopback: loopback ? round(bytesPerS / loopback, 3) : null,
    compute_examples_per_s_per_worker: round(computeExamplesPerS, 1),
    torch_single_thread_examples_per_s: torch === undefined ? null : round(torch, 1),
  };
}
