import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import { TrialShard, type ConsistencyMode } from '../../ps/trial-shard';
import {
  decodeCheckpoint,
  encodeCheckpoint,
  CorruptCheckpointError,
} from '../../ps/checkpoint-codec';
import { FileCheckpointStore } from '../../ps/checkpoint-store';
import { tempDir } from '../helpers/repo';

const ADAM = resolveOptimizerConfig({ kind: 'adam', lr: 0.01 });
const meta = (batch: number, step = 0, step_size = 1, epoch = 0) => ({
  epoch,
  batch,
  step,
  step_size,
});

function shard(mode: ConsistencyMode, values: number[]): TrialShard {
  return new TrialShard('t', ADAM, mode, [
    { name: 'w', start: 0, length: values.length, values: Float32Array.from(values) },
  ]);
}

function roundTrip(t: TrialShard): TrialShard {
  const [saved] = decodeCheckpoint(encodeCheckpoint('ps-0', [t.checkpoint()])).trials;
  return TrialShard.restore(saved);
}

describe('checkpoint codec', () => {
  it('optimizer state, step count and applied batches round-trip: training continues identically', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 5 }),
        (initial, gradScale) => {
          const a = shard('async', initial);
          const grads = gradScale.map((g) => Float32Array.from(initial, (_, i) => g * (i + 1)));
          grads.forEach((g, k) => a.push(meta(k), [g]));
          const b = roundTrip(a);
          assert.equal(b.version, a.version);
          assert.equal(b.batchesApplied, a.batchesApplied);
          assert.ok(b.isDuplicate(0, 0), 'applied batches stay applied');
          const next = Float32Array.from(initial, () => 0.5);
          a.push(meta(99), [next]);
          b.push(meta(99), [next]);
          assert.deepEqual(
            b.slices[0].values,
            a.slices[0].values,
            'Adam continues from the same m, v and t',
          );
        },
      ),
      { numRuns: 50 },
    );
  });

  it('a sync step still gathering is left out, so its batches count as never received', () => {
    const t = shard('sync', [1, 2]);
    t.push(meta(0, 0, 2), [Float32Array.of(1, 1)]);
    t.push(meta(1, 0, 2), [Float32Array.of(1, 1)]); // step 0 applied
    t.push(meta(2, 1, 2), [Float32Array.of(1, 1)]); // step 1 half gathered
    const restored = roundTrip(t);
    assert.equal(restored.version, 1);
    assert.ok(restored.isDuplicate(0, 1));
    assert.ok(!restored.isDuplicate(0, 2), 'batch 2 must be pushed again');
    assert.deepEqual(restored.appliedKeys().sort(), [0, 1]);
  });

  it('refuses a buffer that is not a checkpoint or whose sizes do not add up', () => {
    const good = encodeCheckpoint('ps-0', [shard('async', [1, 2, 3]).checkpoint()]);
    assert.throws(
      () => decodeCheckpoint(Buffer.from('hello world, not a checkpoint')),
      CorruptCheckpointError,
    );
    assert.throws(
      () => decodeCheckpoint(good.subarray(0, good.length - 4)),
      CorruptCheckpointError,
    );
    assert.throws(
      () => decodeCheckpoint(Buffer.concat([good, Buffer.alloc(4)])),
      CorruptCheckpointError,
    );
  });
});

describe('FileCheckpointStore', () => {
  const decode = (blob: Buffer) => decodeCheckpoint(blob).trials[0].slices[0].values[0];
  const blob = (value: number) => encodeCheckpoint('ps-0', [shard('async', [value]).checkpoint()]);

  function storeWith(): {
    dir: string;
    store: FileCheckpointStore;
    skipped: string[];
  } {
    const dir = tempDir('ckpt');
    const skipped: string[] = [];
    const store = new FileCheckpointStore(dir, {
      onSkip: (file, reason) => skipped.push(`${file}: ${reason}`),
    });
    return { dir, store, skipped };
  }

  it('loads the newest and keeps only the last three', async () => {
    const { dir, store } = storeWith();
    for (const v of [1, 2, 3, 4, 5]) await store.save(blob(v));
    assert.deepEqual(await store.loadNewest(decode), { seq: 5, value: 5 });
    assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.manifest.json')).length, 3);
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  for (const [what, damage] of [
    [
      'a flipped byte',
      (file: string) => {
        const data = fs.readFileSync(file);
        data[data.length - 3] ^= 0xff;
        fs.writeFileSync(file, data);
      },
    ],
    ['truncation', (file: string) => fs.truncateSync(file, 20)],
    [
      'a crash before the manifest',
      (file: string) => fs.rmSync(file.replace(/\.bin$/, '.manifest.json')),
    ],
  ] as const) {
    it(`falls back to the previous checkpoint after ${what}`, async () => {
      const { dir, store, skipped } = storeWith();
      await store.save(blob(1));
      await store.save(blob(2));
      damage(path.join(dir, 'ckpt-00000002.bin'));
      assert.deepEqual(await store.loadNewest(decode), { seq: 1, value: 1 });
      if (what !== 'a crash before the manifest') assert.match(skipped.join(), /ckpt-00000002/);
      await store.save(blob(3));
      assert.deepEqual(
        await store.loadNewest(decode),
        { seq: 3, value: 3 },
        'new checkpoints go on after the damage',
      );
    });
  }

  it('falls back when the data verifies but cannot be decoded (wrong shape)', async () => {
    const { store, skipped } = storeWith();
    await store.save(blob(1));
    const bad = blob(2);
    bad.writeUInt32LE(bad.readUInt32LE(8) - 1, 8); // header length off by one: the JSON no longer parses
    await store.save(bad);
    assert.deepEqual(await store.loadNewest(decode), { seq: 1, value: 1 });
    assert.match(skipped.join(), /header/);
  });
});
