import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as grpcStatus } from '@grpc/grpc-js';
import { CoordinatorClient } from '../../core/coordinator-client';
import { ParameterServerClient } from '../../core/ps-client';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import { assertExactlyOnce, faultTrial, progress, startCluster, submit } from '../helpers/cluster';
import { runCaviar } from '../helpers/repo';

/** Each shard's trials may take 64 MB: mlp:64 needs about 1.4 MB of it, mlp:4096,4096 240 MB. */
const SHARD_MEMORY = 64 * 1024 * 1024;
const TOO_LARGE = 'mlp:4096,4096';
const REFUSAL =
  /does not fit in the shards' memory: shard ps-\d would need [\d.]+ MB .* 64 MB limit/;

test(
  "a trial too large for the shards' memory is refused at submission (RESOURCE_EXHAUSTED, CLI exit 2); a running trial is not disturbed",
  { timeout: 120_000 },
  async () => {
    await using cluster = await startCluster('admission', {
      workers: 2,
      shards: 2,
      shardMaxMemory: SHARD_MEMORY,
    });
    const client = new CoordinatorClient(cluster.coordinator);
    try {
      const running = await submit(client, faultTrial('async'));
      await running.until((s) => progress(s) >= 10);

      await assert.rejects(
        client.submitTrial({ ...faultTrial('async'), name: 'huge', model: TOO_LARGE }),
        (err: { code?: number; details?: string }) => {
          assert.equal(err.code, grpcStatus.RESOURCE_EXHAUSTED);
          assert.match(err.details ?? '', REFUSAL);
          assert.match(err.details ?? '', /mlp:4096,4096: 20037642 parameters/);
          return true;
        },
      );
      const cli = await runCaviar(
        ['train', '--coordinator', cluster.coordinator, '--dataset', 'mnist'].concat([
          '--model',
          TOO_LARGE,
          '--epochs',
          '1',
          '--batch',
          '64',
        ]),
        { timeoutMs: 60_000 },
      );
      assert.equal(cli.code, 2, cli.stderr);
      const lines = cli.stderr.trim().split('\n');
      assert.equal(lines.length, 1, cli.stderr);
      assert.match(lines[0], REFUSAL);

      // A shard refuses such an Init by itself too, before it takes the memory.
      const shard = new ParameterServerClient(cluster.process('ps-0').address);
      try {
        const length = 3_000_000; // 84 MB at 7 copies
        await assert.rejects(
          shard.init(
            'huge-direct',
            {
              optimizer: resolveOptimizerConfig({ kind: 'adam' }),
              mode: 'async',
              slices: [{ name: 'w', start: 0, length, shard: 0 }],
            },
            new Map([['w', new Float32Array(length)]]),
          ),
          (err: { code?: number; details?: string }) =>
            err.code === grpcStatus.RESOURCE_EXHAUSTED && /64 MB limit/.test(err.details ?? ''),
        );
        assert.equal((await shard.stats('huge-direct')).held, false, 'nothing was kept');
      } finally {
        shard.close();
      }

      assertExactlyOnce(await running.done);
      const names = (await client.listTrials()).map((t) => t.spec?.name);
      assert.ok(!names.includes('huge'), 'the refused trial was never stored');
      assert.equal((await client.listTrials()).length, 1);
    } finally {
      client.close();
    }
  },
);
