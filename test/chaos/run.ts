/**
 * `npm run chaos [-- --mode sync] [--compute-thread on]` (not part of `npm test`): an MNIST trial on a local cluster
 * (etcd, 2 shards, 3 workers) while a random process is killed every few seconds for a minute and started again.
 * Prints one JSON line: kills survived, batches scheduled / applied / lost / doubled (as counted
 * by each shard), time to recover (p50/p95) and the final validation accuracy.
 */
import { Command, Option } from 'commander';
import { LocalCluster } from '../../client/local-cluster';
import { CoordinatorClient } from '../../core/coordinator-client';
import { progress, sleep, submit } from '../helpers/cluster';
import { testOutputDir } from '../helpers/repo';
import { percentile } from '../bench/stats';
import { COMPUTE_THREAD_CHOICES, type ComputeThreadChoice } from '../../core/backend-choice';

interface ChaosOptions {
  mode: 'sync' | 'async';
  computeThread: ComputeThreadChoice;
  seconds: number;
  everyMs: number;
  seed: number;
}

/** A small deterministic generator, so a chaos run can be repeated kill for kill. */
function lcg(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function main(): Promise<void> {
  const o = new Command('chaos')
    .addOption(
      new Option('--mode <mode>', 'consistency mode of the trial')
        .choices(['sync', 'async'])
        .default('async'),
    )
    .option('--seconds <s>', 'how long to keep killing', Number, 60)
    .option('--every-ms <ms>', 'time between kills', Number, 5_000)
    .option('--seed <n>', 'which processes die, in which order', Number, 1)
    .addOption(
      new Option('--compute-thread <where>', "the workers' --compute-thread")
        .choices(COMPUTE_THREAD_CHOICES)
        .default('auto'),
    )
    .parse(process.argv)
    .opts<ChaosOptions>();
  const random = lcg(o.seed);
  const cluster = await new LocalCluster({
    workers: 3,
    shards: 2,
    backend: 'auto',
    memberTtl: 2,
    computeThread: o.computeThread,
    logDir: testOutputDir('chaos'),
  }).start();
  const client = new CoordinatorClient(cluster.coordinator);
  const kills: Array<{ id: string; at: number; recoveredMs?: number }> = [];
  try {
    const trial = await submit(client, {
      dataset: 'mnist',
      model: 'mlp:256',
      batch: 64,
      // Long enough to outlast the minute of kills: a faster cluster ended 30 epochs in 20 s and
      // later 100 epochs in 31 s (4 kills), and the kills after that hit an idle cluster.
      epochs: 250,
      mode: o.mode,
    });
    let finished = false;
    void trial.done.then(
      () => (finished = true),
      () => (finished = true),
    );
    let latest = 0;
    let lastProgressAt = Date.now();
    void trial.until((s) => {
      const p = progress(s);
      if (p > latest) {
        latest = p;
        lastProgressAt = Date.now();
        for (const k of kills)
          if (k.recoveredMs === undefined && lastProgressAt > k.at + 1_000)
            k.recoveredMs = lastProgressAt - k.at;
      }
      return false;
    });
    const stopAt = Date.now() + o.seconds * 1000;
    // Kills only while the trial trains: a kill after its end would prove nothing.
    while (Date.now() < stopAt && !finished) {
      await sleep(o.everyMs);
      if (finished) break;
      const victims = cluster.processes.filter((p) => p.child.exitCode === null);
      const victim = victims[Math.floor(random() * victims.length)];
      process.stderr.write(`chaos: SIGKILL ${victim.id}\n`);
      kills.push({ id: victim.id, at: Date.now() });
      await cluster.signal(victim.id, 'SIGKILL');
      await sleep(1_000);
      await cluster.restart(victim.id);
    }
    const status = await trial.done;
    const perShard = status.batches_applied_per_shard.map(Number);
    const scheduled = Number(status.batches_scheduled);
    const recovered = kills
      .map((k) => k.recoveredMs)
      .filter((ms): ms is number => ms !== undefined);
    process.stdout.write(
      JSON.stringify({
        chaos: `mnist mlp:256 ${o.mode}, 3 workers, 2 shards, etcd`,
        seconds_of_kills: o.seconds,
        kills: kills.length,
        killed: kills.map((k) => k.id),
        kills_survived: status.status === 'completed' ? kills.length : 0,
        status: status.status,
        batches_scheduled: scheduled,
        batches_applied_per_shard: perShard,
        batches_lost: Math.max(0, ...perShard.map((n) => scheduled - n)),
        batches_doubled: Math.max(0, ...perShard.map((n) => n - scheduled)),
        batches_requeued: status.batches_requeued,
        pushes_refused: status.pushes_refused,
        recover_ms_p50: percentile(recovered, 50),
        recover_ms_p95: percentile(recovered, 95),
        recover_ms: kills.map((k) => ({ [k.id]: k.recoveredMs ?? null })),
        val_accuracy: status.history.at(-1)?.val_accuracy ?? null,
        logs: cluster.logDir,
      }) + '\n',
    );
  } finally {
    client.close();
    await cluster.close();
  }
}

if (require.main === module && !process.env.NODE_TEST_CONTEXT) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
