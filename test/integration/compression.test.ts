import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCaviar } from '../helpers/repo';
import { trainCompleted } from '../helpers/train-run';
import '../helpers/reaper';
import type { TrainSummary } from '../../client/summary';

/** One deterministic MNIST trial (1 worker, sync) over the chunk path, with `compress`. */
async function train(compress: string, compressPull = 'none'): Promise<TrainSummary> {
  const args = ['--local', '--workers', '1', '--shards', '1', '--mode', 'sync'];
  args.push('--dataset', 'mnist', '--model', 'mlp:64', '--epochs', '2', '--batch', '128');
  args.push('--lr', '1e-3', '--compress', compress, '--compress-pull', compressPull);
  // Shared memory off: the pushes stream chunks, as they do between machines.
  return trainCompleted(args, { env: { CAVIAR_SHM_DIR: 'off' } });
}

test(
  '--compress bf16 and fp16 train MNIST to within 0.5 points of uncompressed pushes at equal epochs, topk:0.1 within 3',
  { timeout: 540_000 },
  async () => {
    const none = await train('none');
    for (const codec of ['bf16', 'fp16']) {
      const compressed = await train(codec);
      const gap = Math.abs((compressed.val_accuracy ?? 0) - (none.val_accuracy ?? 1));
      assert.ok(gap <= 0.005, `${codec}: ${compressed.val_accuracy} vs ${none.val_accuracy}`);
      // The run is deterministic, so a loss equal to the last digit would mean nothing was rounded.
      assert.notEqual(compressed.val_loss, none.val_loss, `${codec} pushes were not compressed`);
      if (codec !== 'bf16') continue;
      // bf16 both ways: the worker computes from rounded values, the shard keeps float32 ones.
      const both = await train('bf16', 'bf16');
      const bothGap = Math.abs((both.val_accuracy ?? 0) - (none.val_accuracy ?? 1));
      assert.ok(bothGap <= 0.005, `bf16 both ways: ${both.val_accuracy} vs ${none.val_accuracy}`);
      assert.notEqual(both.val_loss, compressed.val_loss, 'the pulls were not compressed');
    }
    // Top-k keeps a tenth of each gradient and feeds the rest back: 0.872 against 0.885 when
    // measured, so it may trail by a few points at equal epochs, and it must still learn.
    const topk = await train('topk:0.1');
    const gap = (none.val_accuracy ?? 1) - (topk.val_accuracy ?? 0);
    assert.ok(gap <= 0.03, `topk:0.1: ${topk.val_accuracy} vs ${none.val_accuracy}`);
    assert.notEqual(topk.val_loss, none.val_loss, 'topk pushes were not sparsified');
  },
);

test('--compress and --compress-pull refuse a codec they do not know with one line and exit 2', async () => {
  for (const flag of ['--compress', '--compress-pull']) {
    const result = await runCaviar(['train', '--local', '--dataset', 'mnist', flag, 'zip']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, flag === '--compress' ? /compress "zip"/ : /compress-pull "zip"/);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  }
});
