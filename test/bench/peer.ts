/**
 * The peer section of `npm run bench`: the trial against ../shared/bench/peer_torch_ps.py (a
 * PyTorch RPC parameter server) for workers {1,2} × mode {sync,async}, then 2 workers for
 * LONG_EPOCHS; skipped when the script is missing or no python3 imports torch.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../helpers/repo';
import { failure, lastJsonLine, mnistDigitsDir, runChild, torchPython } from './children';
import { messageOf, type BenchReport, type SectionOptions } from './report';
import { medianIndex, round, spreadOf } from './stats';
import {
  aggregate,
  BATCH,
  clusterLabel,
  EPOCHS,
  logRun,
  trainOnce,
  type ClusterConfig,
  type Mode,
  type TrainRun,
} from './train-runs';

const PEER_SCRIPT = path.resolve(REPO_ROOT, '..', 'shared', 'bench', 'peer_torch_ps.py');
/** The peer has one parameter-server process; caviar's side of the comparison gets one shard. */
export const PEER_SHARDS = 1;
/**
 * The peer comparison also runs this many epochs: in 2 epochs both sides spend much of their time
 * starting up (loading data, first connections, JIT), so the longer run is closer to how fast
 * each trains once running.
 */
const LONG_EPOCHS = 10;

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
  o: SectionOptions,
  report: BenchReport,
): Promise<void> {
  const cfg: ClusterConfig = { workers, shards: PEER_SHARDS, mode, backend: 'auto', epochs };
  const caviar: TrainRun[] = [];
  const peer: PeerResult[] = [];
  const peerErrors: string[] = [];
  // Alternate caviar and the peer, run by run, so both see the same machine conditions.
  for (let i = 0; i < o.runs; i++) {
    report.log(`peer: caviar ${clusterLabel(cfg)} (run ${i + 1}/${o.runs})`);
    const c = await trainOnce(cfg, o.timeoutS);
    logRun(report, c, false);
    caviar.push(c);
    report.log(
      `peer: pytorch rpc ps, workers ${workers}, ${mode}, ${epochs} epochs (run ${i + 1}/${o.runs})`,
    );
    try {
      const p = await peerOnce(python, workers, mode, epochs, o.timeoutS);
      report.log(`  ${p.examples_per_s} examples/s`);
      peer.push(p);
    } catch (err) {
      const message = messageOf(err);
      report.log(`  failed: ${message}`);
      peerErrors.push(message);
    }
  }
  const { fields } = aggregate(cfg, caviar);
  const peerRates = peer.map((p) => p.examples_per_s);
  const peerSpread = peer.length ? spreadOf(peerRates) : undefined;
  const p = peer.length ? peer[medianIndex(peerRates)] : undefined;
  const caviarRate = typeof fields.examples_per_s === 'number' ? fields.examples_per_s : null;
  const peerRate = peerSpread?.median ?? null;
  report.emit({
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

export async function benchPeer(o: SectionOptions, report: BenchReport): Promise<void> {
  if (!fs.existsSync(PEER_SCRIPT)) {
    report.emit({ bench: 'peer', skipped: `${PEER_SCRIPT} not found` });
    return;
  }
  const python = torchPython();
  if (!python) {
    report.emit({ bench: 'peer', skipped: 'python3-torch not installed' });
    return;
  }
  for (const workers of [1, 2])
    for (const mode of ['sync', 'async'] as const)
      await peerPair(python, workers, mode, EPOCHS, o, report);
  for (const mode of ['sync', 'async'] as const)
    await peerPair(python, 2, mode, LONG_EPOCHS, o, report);
}
