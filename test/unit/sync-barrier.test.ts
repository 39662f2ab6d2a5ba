import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { batchKey, batchOfKey } from '../../core/batches';
import { FailedPreconditionError } from '../../core/errors';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import {
  batchesToRerun,
  firstBatchOfStep,
  isStepApplied,
  nextEpochLayout,
  pullVersionOfStep,
  stepOfBatch,
  stepSizeOfBatch,
  stepWaitMs,
  stepsPerEpoch,
  syncPullBudgetMs,
  versionAfterStep,
  type EpochLayout,
} from '../../core/sync-barrier';
import { TrialShard } from '../../ps/trial-shard';

const SGD = resolveOptimizerConfig({ kind: 'sgd', lr: 0.5 });

/** Layouts of `epochs` epochs whose quorum changes each epoch (workers come and go). */
function layouts(batchesPerEpoch: number, quorums: number[]): EpochLayout[] {
  const out: EpochLayout[] = [];
  for (const q of quorums) out.push(nextEpochLayout(out.at(-1), batchesPerEpoch, q));
  return out;
}

/** The sync push of one batch: its step and the step's size, as the coordinator hands it out. */
function pushMeta(layout: EpochLayout, epoch: number, batch: number, batchesPerEpoch: number) {
  return {
    epoch,
    batch,
    step: stepOfBatch(layout, batch),
    step_size: stepSizeOfBatch(layout, batch, batchesPerEpoch),
  };
}

/** A deterministic gradient per batch, so two shards fed the same batches end up equal. */
const gradientOf = (epoch: number, batch: number) => [Float32Array.of(epoch + 1, batch - 2)];

const freshShard = () =>
  new TrialShard('t', SGD, 'sync', [
    { name: 'w', start: 0, length: 2, values: Float32Array.of(0, 0) },
  ]);

describe('sync barrier', () => {
  it('puts every batch of every epoch in exactly one step, steps numbered without gaps across epochs', () => {
    for (const batchesPerEpoch of [1, 5, 7, 12]) {
      const all = layouts(batchesPerEpoch, [1, 3, 2, 5, 4]);
      const seen: number[] = [];
      for (const layout of all) {
        const sizes = new Map<number, number>();
        for (let b = 0; b < batchesPerEpoch; b++) {
          const step = stepOfBatch(layout, b);
          sizes.set(step, (sizes.get(step) ?? 0) + 1);
          assert.equal(stepOfBatch(layout, firstBatchOfStep(layout, b)), step);
          assert.ok(firstBatchOfStep(layout, b) <= b);
        }
        for (const [step, count] of sizes) {
          const first = [...Array(batchesPerEpoch).keys()].find(
            (b) => stepOfBatch(layout, b) === step,
          )!;
          assert.equal(
            stepSizeOfBatch(layout, first, batchesPerEpoch),
            count,
            `step ${step}'s size`,
          );
        }
        assert.equal(sizes.size, stepsPerEpoch(batchesPerEpoch, layout.quorum));
        seen.push(...sizes.keys());
      }
      assert.deepEqual(
        seen,
        [...seen.keys()],
        'steps 0, 1, 2, ... in order, none shared by two epochs',
      );
    }
  });

  it('a shard reaches the version a step pulls exactly when every earlier step is applied', () => {
    const batchesPerEpoch = 7;
    const all = layouts(batchesPerEpoch, [3, 2]);
    const shard = freshShard();
    for (const [epoch, layout] of all.entries()) {
      for (let b = 0; b < batchesPerEpoch; b++) {
        const meta = pushMeta(layout, epoch, b, batchesPerEpoch);
        assert.ok(shard.version <= pullVersionOfStep(meta.step, false));
        const last = b === batchesPerEpoch - 1 || stepOfBatch(layout, b + 1) !== meta.step;
        // The step's pull target is reached once the step before is in, and no earlier.
        if (b === firstBatchOfStep(layout, b))
          assert.equal(shard.version, pullVersionOfStep(meta.step, false));
        shard.push(meta, gradientOf(epoch, b));
        if (last) assert.equal(shard.version, versionAfterStep(meta.step));
        else assert.equal(shard.version, pullVersionOfStep(meta.step, false), 'still gathering');
        assert.equal(isStepApplied(meta.step, shard.version), last);
      }
    }
    assert.equal(shard.batchesApplied, 2 * batchesPerEpoch);
  });

  it('refuses a push for a step already applied, and a repair pulls without waiting', () => {
    const layout = nextEpochLayout(undefined, 4, 2);
    const shard = freshShard();
    for (let b = 0; b < 4; b++) shard.push(pushMeta(layout, 0, b, 4), gradientOf(0, b));
    const late = { ...pushMeta(layout, 0, 1, 4), batch: 9 };
    assert.throws(() => shard.push(late, gradientOf(0, 9)), FailedPreconditionError);
    assert.equal(pullVersionOfStep(1, true), 0);
  });

  it('a shard restored from an older checkpoint re-runs exactly the batches it lacks, in order, and ends equal to its peer', () => {
    const batchesPerEpoch = 6;
    const all = layouts(batchesPerEpoch, [2, 3]);
    const healthy = freshShard();
    const completed: number[] = [];
    let restored: TrialShard | undefined;
    for (const [epoch, layout] of all.entries()) {
      for (let b = 0; b < batchesPerEpoch; b++) {
        healthy.push(pushMeta(layout, epoch, b, batchesPerEpoch), gradientOf(epoch, b));
        completed.push(batchKey(epoch, b));
        // The restored shard's checkpoint: mid-step (batch 4 of epoch 0 is gathered, not applied).
        if (epoch === 0 && b === 4) {
          const saved = healthy.appliedKeys();
          restored = TrialShard.restore({
            trial: 't',
            config: SGD,
            mode: 'sync',
            version: healthy.version,
            batchesApplied: healthy.batchesApplied,
            applySeconds: 0,
            applied: saved,
            slices: healthy.slices.map((s) => ({
              ...s,
              values: s.values.slice(),
              state: s.state.map((a) => a.slice()),
            })),
          });
        }
      }
    }
    assert.ok(restored);
    assert.equal(restored.version, 2, 'steps 0 and 1 were in the checkpoint');
    const rerun = batchesToRerun(
      completed,
      [new Set(healthy.heldKeys()), new Set(restored.heldKeys())],
      batchOfKey,
    );
    assert.deepEqual(
      rerun.map((r) => `${r.epoch}:${r.batch}`),
      ['0:4', '0:5', '1:0', '1:1', '1:2', '1:3', '1:4', '1:5'],
      'the gathering step and every later one, oldest first',
    );
    for (const { epoch, batch } of rerun) {
      const meta = pushMeta(all[epoch], epoch, batch, batchesPerEpoch);
      // The repair's pull waits for nothing; the restored shard is at its step when it pushes.
      assert.equal(restored.version, meta.step);
      assert.equal(healthy.push(meta, gradientOf(epoch, batch)).duplicate, true);
      assert.equal(restored.push(meta, gradientOf(epoch, batch)).accepted, true);
    }
    assert.equal(restored.version, healthy.version);
    assert.deepEqual(restored.slices[0].values, healthy.slices[0].values);
    assert.equal(restored.batchesApplied, healthy.batchesApplied, 'every batch once on each');
  });

  it('keeps the wait budgets within their bounds', () => {
    assert.equal(stepWaitMs(0), 10);
    assert.equal(stepWaitMs(20), 60);
    assert.equal(stepWaitMs(1e6), 200);
    assert.equal(syncPullBudgetMs(60_000, 1), 2_000);
    assert.equal(syncPullBudgetMs(60_000, 500), 10_000);
    assert.equal(syncPullBudgetMs(3_000, 500), 3_000, 'never past the batch lease');
  });
});
