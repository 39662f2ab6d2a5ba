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
  readCheckpoint,
  writeCheckpoint,
  CorruptCheckpointError,
  type CheckpointSource,
} from '../../ps/checkpoint-codec';
import { FileCheckpointStore } from '../../ps/checkpoint-store';
import { REPO_ROOT, tempDir } from '../helpers/repo';

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

async function roundTrip(t: TrialShard): Promise<TrialShard> {
  const [saved] = (await decodeCheckpoint(await encodeCheckpoint('ps-0', [t]))).trials;
  return TrialShard.restore(saved);
}

describe('checkpoint codec', () => {
  it('optimizer state, step count and applied batches round-trip: training continues identically', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 5 }),
        async (initial, gradScale) => {
          const a = shard('async', initial);
          const grads = gradScale.map((g) => Float32Array.from(initial, (_, i) => g * (i + 1)));
          grads.forEach((g, k) => a.push(meta(k), [g]));
          const b = await roundTrip(a);
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

  it("keeps an ssp trial's staleness bound", async () => {
    const t = shard('async', [1, 2]);
    t.maxStaleness = 3;
    assert.equal((await roundTrip(t)).maxStaleness, 3);
    assert.equal((await roundTrip(shard('async', [1]))).maxStaleness, 0);
  });

  it('a sync step still gathering is left out, so its batches count as never received', async () => {
    const t = shard('sync', [1, 2]);
    t.push(meta(0, 0, 2), [Float32Array.of(1, 1)]);
    t.push(meta(1, 0, 2), [Float32Array.of(1, 1)]); // step 0 applied
    t.push(meta(2, 1, 2), [Float32Array.of(1, 1)]); // step 1 half gathered
    const restored = await roundTrip(t);
    assert.equal(restored.version, 1);
    assert.ok(restored.isDuplicate(0, 1));
    assert.ok(!restored.isDuplicate(0, 2), 'batch 2 must be pushed again');
    assert.deepEqual(restored.appliedKeys().sort(), [0, 1]);
  });

  it('refuses a buffer that is not a checkpoint or whose sizes do not add up', async () => {
    const good = await encodeCheckpoint('ps-0', [shard('async', [1, 2, 3])]);
    for (const bad of [
      Buffer.from('hello world, not a checkpoint'),
      Buffer.from('CAVC'),
      good.subarray(0, good.length - 4),
      Buffer.concat([good, Buffer.alloc(4)]),
    ])
      await assert.rejects(decodeCheckpoint(bad), CorruptCheckpointError);
  });

  it('reads checkpoints of the first format (one header for all trials, aligned data)', async () => {
    // Written by the format-1 encoder: trial t, adam lr 0.01, values [1, 2, 3], one batch applied.
    const file = path.join(REPO_ROOT, 'test', 'unit', 'fixtures', 'checkpoint-v1.bin');
    const [saved] = (await decodeCheckpoint(fs.readFileSync(file))).trials;
    const now = shard('async', [1, 2, 3]);
    now.push(meta(0), [Float32Array.of(0.5, -1, 2)]);
    const restored = TrialShard.restore(saved);
    assert.equal(restored.version, 1);
    assert.ok(restored.isDuplicate(0, 0));
    assert.deepEqual(restored.slices, now.slices);
  });

  it("writes one trial at a time: a trial's updates wait for its own section, not the others'", async () => {
    const a = shard('async', [1, 2]);
    const b = new TrialShard('u', ADAM, 'async', [
      { name: 'w', start: 0, length: 2, values: Float32Array.of(3, 4) },
    ]);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let writes = 0;
    // The sink stalls on trial a's float data (its second write) until released.
    const saving = writeCheckpoint(
      { write: async () => void (++writes === 3 && (await held)) },
      'ps-0',
      [a, b],
    );
    await new Promise((resolve) => setImmediate(resolve));
    const order: string[] = [];
    const updateA = a.access.write(() => order.push('a'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, [], 'a is lent to the checkpoint: its update waits');
    assert.equal(b.access.busy, false, 'b is not lent yet, and its updates go on');
    release();
    await saving;
    await updateA;
    assert.deepEqual(order, ['a']);
  });
});

describe('FileCheckpointStore', () => {
  const decode = async (source: CheckpointSource) =>
    (await readCheckpoint(source)).trials[0].slices[0].values[0];
  const save = (store: FileCheckpointStore, value: number) =>
    store.save((sink) => writeCheckpoint(sink, 'ps-0', [shard('async', [value])]));

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
    for (const v of [1, 2, 3, 4, 5]) await save(store, v);
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
      await save(store, 1);
      await save(store, 2);
      damage(path.join(dir, 'ckpt-00000002.bin'));
      assert.deepEqual(await store.loadNewest(decode), { seq: 1, value: 1 });
      if (what !== 'a crash before the manifest') assert.match(skipped.join(), /ckpt-00000002/);
      await save(store, 3);
      assert.deepEqual(
        await store.loadNewest(decode),
        { seq: 3, value: 3 },
        'new checkpoints go on after the damage',
      );
    });
  }

  it('falls back when the data verifies but cannot be decoded (wrong shape)', async () => {
    const { store, skipped } = storeWith();
    await save(store, 1);
    const bad = await encodeCheckpoint('ps-0', [shard('async', [2])]);
    bad.writeUInt32LE(bad.readUInt32LE(8) - 1, 8); // header length off by one: the JSON no longer parses
    await store.save((sink) => sink.write(bad));
    assert.deepEqual(await store.loadNewest(decode), { seq: 1, value: 1 });
    assert.match(skipped.join(), /header/);
  });
});
