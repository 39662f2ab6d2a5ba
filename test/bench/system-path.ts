/**
 * The system path alone: ParameterServerShards (in child processes, as in a real cluster) and one
 * ParameterServerClient per shard pulling and pushing the MNIST MLP's parameters (784-256-10,
 * 203,530 float32 = 814 KB) in a loop, as a worker does (async Adam, a new batch each push).
 * Prints one JSON line: ms per pull and per push (median, p10, p90), MB/s at the median, round
 * trips per second, and the CPU milliseconds each round trip cost the client and the shards:
 * on a shared machine the CPU figures move much less than the wall-clock ones.
 *
 *   node dist/test/bench/system-path.js [--model mlp:256] [--seconds 3] [--shards 1] [--inproc]
 *                                       [--push-pull] [--same-host]
 *
 * With --shards 2 the client pulls and pushes both shards at once, as a worker does.
 * --inproc runs the shards in this process (one thread for both ends: for profiles).
 * --push-pull makes each round trip one PushPull call, as async-mode workers do.
 * --same-host passes the values through shared-memory segments instead of gRPC chunks, as
 * workers on the shards' machine do (core/shared-segment.ts).
 */
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { ParameterServerClient } from '../../core/ps-client';
import { modelParams, parseModelSpec } from '../../core/model-spec';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import { elementCount, placeTensors, slicesOnShard, type Slice } from '../../core/placement';
import { ParameterServerShard } from '../../ps/server';
import { round } from './stats';
import { sharedMemoryDir } from '../../core/shared-segment';
import { answerCpuQueries, childCpuMs, cpuMs, replyFrom } from './bench-child';

interface Options {
  model: string;
  seconds: number;
  shards: number;
  inproc: boolean;
  pushPull: boolean;
  sameHost: boolean;
  serve: boolean;
}

/** Child mode: serves one shard, sends its address, answers CPU-time queries, exits on SIGINT. */
async function serve(): Promise<void> {
  const shard = new ParameterServerShard({
    id: `bench-${process.pid}`,
    sharedMemoryDir: sharedMemoryDir(),
  });
  const address = await shard.start();
  process.send?.({ address });
  answerCpuQueries();
  // A normal exit, so --cpu-prof writes the shard's profile.
  process.once('SIGINT', () => void shard.close().then(() => process.exit(0)));
}

interface Shards {
  addresses: string[];
  /** CPU ms used so far by the shard processes (0 in-process: the client's figure has it). */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startShards(n: number, inproc: boolean): Promise<Shards> {
  if (inproc) {
    const shards = Array.from(
      { length: n },
      (_, i) => new ParameterServerShard({ id: `ps-${i}`, sharedMemoryDir: sharedMemoryDir() }),
    );
    const addresses = await Promise.all(shards.map((s) => s.start()));
    return {
      addresses,
      cpuMs: () => Promise.resolve(0),
      stop: async () => void (await Promise.all(shards.map((s) => s.close()))),
    };
  }
  const children = Array.from({ length: n }, () =>
    fork(__filename, ['--serve'], { stdio: 'inherit', execArgv: process.execArgv }),
  );
  const addresses = await Promise.all(
    children.map((c) => replyFrom(c, (m: { address?: string }) => m.address)),
  );
  return {
    addresses,
    cpuMs: async () => {
      const each = await Promise.all(children.map(childCpuMs));
      return each.reduce((a, b) => a + b, 0);
    },
    stop: async () => {
      const exited = children.map(
        (c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.once('exit', r))),
      );
      for (const c of children) c.kill('SIGINT');
      await Promise.all(exited);
    },
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summarize(ms: number[], bytes: number): Record<string, number> {
  const s = [...ms].sort((a, b) => a - b);
  const med = quantile(s, 0.5);
  return {
    ops: s.length,
    ms_median: round(med, 2),
    ms_p10: round(quantile(s, 0.1), 2),
    ms_p90: round(quantile(s, 0.9), 2),
    mb_per_s: round(bytes / 1e6 / (med / 1000), 1),
  };
}

async function measure(o: Options): Promise<void> {
  const params = modelParams(parseModelSpec(o.model), [784], 10);
  const slices = placeTensors(params, o.shards);
  const shardSlices: Slice[][] = Array.from({ length: o.shards }, (_, s) =>
    slicesOnShard(slices, s),
  );
  const values = new Map(params.map((p) => [p.name, new Float32Array(elementCount(p.shape))]));
  for (const v of values.values()) for (let i = 0; i < v.length; i++) v[i] = Math.sin(i) * 0.01;
  const grads = new Map([...values].map(([k, v]) => [k, v.map((x) => x * 0.1)]));
  const bytes = [...values.values()].reduce((n, v) => n + v.byteLength, 0);

  const shards = await startShards(o.shards, o.inproc);
  const dir = o.sameHost ? sharedMemoryDir() : undefined;
  if (o.sameHost && !dir) throw new Error('--same-host: no shared-memory folder here');
  const clients = shards.addresses.map(
    (a) => new ParameterServerClient(a, { sharedMemoryDir: dir }),
  );
  const trial = 'bench';
  const optimizer = resolveOptimizerConfig({ kind: 'adam', lr: 1e-3 });
  await Promise.all(
    clients.map((c, s) =>
      c.init(trial, { optimizer, mode: 'async', slices: shardSlices[s] }, values),
    ),
  );
  const pulls: number[] = [];
  const pushes: number[] = [];
  let batch = 0;
  const runFor = async (seconds: number, record: boolean): Promise<void> => {
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      if (o.pushPull) {
        // As an async-mode worker does: the values come back with the push, no separate pull.
        const t = performance.now();
        const header = { trial, epoch: 0, batch: batch++, worker: 'bench', version: 0 };
        await Promise.all(clients.map((c, s) => c.pushPull(header, shardSlices[s], grads, values)));
        if (record) pushes.push(performance.now() - t);
        continue;
      }
      let t = performance.now();
      await Promise.all(clients.map((c, s) => c.pull(trial, shardSlices[s], values)));
      if (record) pulls.push(performance.now() - t);
      t = performance.now();
      const header = { trial, epoch: 0, batch: batch++, worker: 'bench', version: 0 };
      await Promise.all(clients.map((c, s) => c.push(header, shardSlices[s], grads)));
      if (record) pushes.push(performance.now() - t);
    }
  };
  await runFor(0.5, false);
  const [clientCpu0, shardCpu0] = [cpuMs(), await shards.cpuMs()];
  const started = performance.now();
  await runFor(o.seconds, true);
  const wall = (performance.now() - started) / 1000;
  const [clientCpu, shardCpu] = [cpuMs() - clientCpu0, (await shards.cpuMs()) - shardCpu0];
  const transport = clients[0].transport;
  for (const c of clients) c.close();
  await shards.stop();
  const trips = pushes.length;
  process.stdout.write(
    JSON.stringify({
      bench: 'system_path',
      model: o.model,
      bytes,
      shards: o.shards,
      inproc: o.inproc,
      transport,
      ...(o.pushPull
        ? { push_pull: summarize(pushes, bytes) }
        : { pull: summarize(pulls, bytes), push: summarize(pushes, bytes) }),
      round_trips_per_s: round(trips / wall, 1),
      cpu_ms_per_round_trip: {
        client: round(clientCpu / trips, 2),
        shards: round(shardCpu / trips, 2),
      },
      ...(process.env.BENCH_RAW
        ? { raw_pull: pulls.map((x) => round(x, 1)), raw_push: pushes.map((x) => round(x, 1)) }
        : {}),
    }) + '\n',
  );
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--model <spec>', 'model', 'mlp:256')
    .option('--seconds <s>', 'seconds measured', Number, 3)
    .option('--shards <n>', 'shards', Number, 1)
    .option('--inproc', 'shards in this process', false)
    .option(
      '--push-pull',
      'one PushPull per round trip (async workers) instead of Pull + Push',
      false,
    )
    .option('--same-host', 'values through shared-memory segments instead of chunks', false)
    .option('--serve', 'internal: serve one shard', false)
    .parse()
    .opts<Options>();
  if (o.serve) await serve();
  else await measure(o);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
