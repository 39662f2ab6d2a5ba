import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseTrainer, type BatchIo } from '../../worker/lease-trainer';
import type { TrialContext } from '../../worker/trial-context';
import type { TrialCompute } from '../../worker/trial-compute';
import type { Work__Output } from '../../proto/gen/caviar/v1/Work';
import type { TrialSpec__Output } from '../../proto/gen/caviar/v1/TrialSpec';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';

/**
 * A one-parameter model whose gradient is its parameter, and a shard that sets the parameter to
 * 10 × its version with each push: every pushed gradient says which values it was computed from.
 */
function fixture(options: { failPush?: number } = {}) {
  const events: string[] = [];
  const pushed: Array<{ batch: number; version: number; grad: number }> = [];
  let param = 0;
  let shardVersion = 0;
  const set = (p: ReadonlyMap<string, Float32Array>) => {
    param = p.get('w')![0];
    events.push(`set ${param}`);
  };
  const model: TrialCompute = {
    threaded: false,
    setParameters: async (p) => set(p),
    gradients: async (_features, _labels, _count, _noiseKey, values) => {
      if (values) set(values);
      events.push(`compute from ${param}`);
      return { loss: param, grads: new Map([['w', Float32Array.of(param)]]) };
    },
    evaluate: async () => ({ loss: 0, accuracy: 0, examples: 0 }),
    predictLatencyP95: async () => 0,
    dispose: () => undefined,
  };
  const context = {
    trial: 't',
    splits: {
      train: {
        features: new Float32Array(8),
        labels: new Int32Array(8),
        featureShape: [1],
        count: 8,
      },
    },
    model,
    params: [{ name: 'w', shape: [1] }],
    values: new Map([['w', new Float32Array(1)]]),
    shardSlices: [[]],
    shards: ['s'],
    batchFeatures: new Float32Array(1),
    batchLabels: new Int32Array(1),
    augment: [],
    pullCodec: '',
  } as unknown as TrialContext;
  const io: BatchIo = {
    workerId: 'w0',
    pull: () => {
      events.push('pull');
      context.values.get('w')![0] = shardVersion * 10;
      return Promise.resolve(shardVersion);
    },
    pushPull: async (_context, header: PushHeader, grads) => {
      const batch = Number(header.batch);
      events.push(`push ${batch}`);
      pushed.push({ batch, version: Number(header.version), grad: grads.get('w')![0] });
      // The answer comes back on a later turn, as a shard's does.
      await new Promise((r) => setTimeout(r, 5));
      if (batch === options.failPush) throw new Error(`push ${batch} lost`);
      shardVersion += 1;
      context.values.get('w')![0] = shardVersion * 10;
      events.push(`answer ${batch}`);
      return [{ accepted: true, duplicate: false, version: shardVersion }];
    },
    fence: () => '',
    prefetch: () => undefined,
    pushed: () => undefined,
  };
  return { events, pushed, context, trainer: new LeaseTrainer(io) };
}

function lease(mode: string, overlap: boolean, batches = 4): Work__Output {
  const batch = (b: number) => ({
    epoch: 0,
    batch: b,
    indices: [b],
    step: 0,
    step_size: 0,
    min_version: 0,
  });
  return {
    kind: 'train',
    lease: 'l',
    trial: 't',
    spec: { mode, overlap, seed: 1, clip_norm: 0, compress: 'none' } as TrialSpec__Output,
    ...batch(0),
    lease_ms: 1_000,
    shards: ['s'],
    more: Array.from({ length: batches - 1 }, (_, i) => batch(i + 1)),
  };
}

describe('LeaseTrainer', () => {
  it('in turn: each batch computes from the values the push before it brought back', async () => {
    const { trainer, context, pushed } = fixture();
    const result = await trainer.train(context, lease('async', false));
    assert.deepEqual(
      pushed.map((p) => [p.version, p.grad]),
      [
        [0, 0],
        [1, 10],
        [2, 20],
        [3, 30],
      ],
    );
    assert.deepEqual([result.loss, ...(result.more_losses ?? [])], [0, 10, 20, 30]);
  });

  it('overlapped: batch i + 1 computes while batch i is pushed, from values one version older', async () => {
    const { trainer, context, pushed, events } = fixture();
    await trainer.train(context, lease('async', true));
    // Batch 1 computes from the pulled values, as batch 0 did; batch 2 from batch 0's answer.
    assert.deepEqual(
      pushed.map((p) => [p.version, p.grad]),
      [
        [0, 0],
        [0, 0],
        [1, 10],
        [2, 20],
      ],
    );
    const at = (e: string) => events.indexOf(e);
    const batch1 = events.indexOf('compute from 0', at('push 0'));
    assert.ok(batch1 > 0 && batch1 < at('answer 0'), 'batch 1 computes while batch 0 is pushed');
    assert.ok(at('compute from 10') < at('answer 1'));
    assert.deepEqual(
      events.filter((e) => e.startsWith('set')),
      ['set 0', 'set 10', 'set 20', 'set 30'],
      'the parameters are set only from answers that have landed',
    );
    // The next lease starts from the last answer without a pull.
    events.length = 0;
    await trainer.train(context, lease('async', true, 1));
    assert.deepEqual(events.slice(0, 2), ['set 40', 'compute from 40']);
  });

  it('overlapped: a lost push fails the lease, with no unhandled rejection', async () => {
    const { trainer, context } = fixture({ failPush: 1 });
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      await assert.rejects(trainer.train(context, lease('async', true)), /push 1 lost/);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a sync trial never overlaps, whatever its spec says', async () => {
    const { trainer, context, pushed } = fixture();
    await trainer.train(context, lease('sync', true, 2));
    assert.deepEqual(
      pushed.map((p) => p.grad),
      [0, 10],
    );
  });
});
