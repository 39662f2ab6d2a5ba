import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCaviar, tempDir } from '../helpers/repo';
import { trainCompleted } from '../helpers/train-run';
import '../helpers/reaper';
import type { TrainSummary } from '../../client/summary';

function train(workers: number, extra: string[], env = {}): Promise<TrainSummary> {
  const args = ['--local', '--workers', String(workers), '--shards', '1'];
  args.push('--dataset', 'mnist', '--model', 'mlp:64', '--epochs', '2', '--batch', '128');
  args.push('--mode', 'async', '--lr', '1e-3', ...extra);
  return trainCompleted(args, { env });
}

test(
  '--overlap: async workers compute while they push, every batch applied once, on both transports',
  { timeout: 540_000 },
  async () => {
    // One worker is deterministic: overlap must change what its batches computed from.
    const inTurn = await train(1, []);
    const overlapped = await train(1, ['--overlap']);
    assert.notEqual(overlapped.train_loss, inTurn.train_loss, 'no batch computed ahead');
    assert.ok((overlapped.val_accuracy ?? 0) >= (inTurn.val_accuracy ?? 1) - 0.02);
    for (const env of [{}, { CAVIAR_SHM_DIR: 'off' }]) {
      const two = await train(2, ['--overlap'], env);
      assert.ok((two.val_accuracy ?? 0) > 0.85, `val accuracy ${two.val_accuracy}`);
    }
  },
);

test('--overlap with --mode sync, on the CLI or in a sweep, is one line and exit 2', async () => {
  const cli = await runCaviar([
    'train',
    '--local',
    '--dataset',
    'mnist',
    '--mode',
    'sync',
    '--overlap',
  ]);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /overlap .* use mode async or ssp:N/);
  assert.equal(cli.stderr.trim().split('\n').length, 1, cli.stderr);
  const spec = path.join(tempDir('overlap'), 'sweep.yaml');
  fs.writeFileSync(
    spec,
    `name: s
dataset: { source: mnist }
model: { type: mlp, hidden: [64] }
train: { mode: sync, overlap: true, epochs: 1 }
search:
  lr: { log_uniform: [1.0e-4, 1.0e-2] }
budget: { trials: 2 }
`,
  );
  const sweep = await runCaviar(['sweep', spec, '--local']);
  assert.equal(sweep.code, 2);
  assert.match(sweep.stderr, /overlap/);
  assert.equal(sweep.stderr.trim().split('\n').length, 1, sweep.stderr);
});
