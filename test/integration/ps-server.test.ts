import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../core/errors';
import { isTransientRefusal, refusalOf } from '../../core/call-status';
import { valueCodec } from '../../core/value-codec';
import { resolveOptimizerConfig, type OptimizerConfig } from '../../core/optimizer-config';
import { placeTensors, slicesOnShard, type Slice } from '../../core/placement';
import { initialParameters, seededInit, type ParamInfo } from '../../core/model-spec';
import { ParameterServerClient } from '../../core/ps-client';
import { parameterServerProto } from '../../core/rpc';
import { seededUniform } from '../../core/seeded-random';
import { ParameterServerShard } from '../../ps';

const SGD: OptimizerConfig = resolveOptimizerConfig({ kind: 'sgd', lr: 0.5 });

function whole(name: string, length: number): Slice[] {
  return [{ name, start: 0, length, shard: 0 }];
}

function randomTensor(length: number, seed: number): Float32Array {
  const next = seededUniform(seed);
  return Float32Array.from({ length }, () => next() * 2 - 1);
}

/** Rejects-with predicate: a grpc ServiceError carrying `code`. */
function withCode(code: grpc.status) {
  return (err: unknown): boolean => {
    assert.equal((err as { code?: number }).code, code, `got ${errorMessage(err)}`);
    return true;
  };
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

/** θ - lr·g as the shard computes it: in double, rounded once to float32. */
function sgdStep(theta: Float32Array, grad: Float32Array, lr: number): Float32Array {
  return theta.map((t, i) => t - lr * grad[i]);
}

describe('ParameterServerShard over gRPC', () => {
  let shard: ParameterServerShard;
  let client: ParameterServerClient;

  before(async () => {
    shard = new ParameterServerShard({ id: 'ps-test', maxPullWaitMs: 5_000, closeGraceMs: 1_000 });
    client = new ParameterServerClient(await shard.start(), { deadlineMs: 10_000 });
  });
  after(async () => {
    client.close();
    await shard.close();
  });

  /** Inits `trial` with one tensor `w` and returns its initial values. */
  async function initW(
    trial: string,
    length: number,
    extra: Partial<{ optimizer: OptimizerConfig; mode: 'sync' | 'async' }> = {},
  ) {
    const values = randomTensor(length, length);
    const elements = await client.init(
      trial,
      {
        optimizer: extra.optimizer ?? SGD,
        mode: extra.mode ?? 'async',
        slices: whole('w', length),
      },
      new Map([['w', values]]),
    );
    assert.equal(elements, length);
    return values;
  }

  async function pullW(
    trial: string,
    length: number,
  ): Promise<{ version: number; w: Float32Array }> {
    const into = new Map([['w', new Float32Array(length)]]);
    const { version } = await client.pull(trial, whole('w', length), into);
    return { version, w: into.get('w')! };
  }

  function push(
    trial: string,
    batch: number,
    grad: Float32Array,
    extra: { step?: number; step_size?: number } = {},
  ) {
    const header = { trial, epoch: 0, batch, worker: 'w0', version: 0, ...extra };
    return client.push(header, whole('w', grad.length), new Map([['w', grad]]));
  }

  it('decodes a push compressed to bf16, fp16 or sparse and applies exactly the gradient it stands for', async () => {
    for (const codec of ['bf16', 'fp16']) {
      const initial = await initW(`codec-${codec}`, 1000);
      const grad = randomTensor(1000, 77);
      const rounded = new Float32Array(grad.length);
      valueCodec(codec).decodeInto(valueCodec(codec).encode(grad), rounded, 0);
      const header = { trial: `codec-${codec}`, epoch: 0, batch: 0, worker: 'w0', codec };
      await client.push(header, whole('w', grad.length), new Map([['w', grad]]));
      const { w } = await pullW(`codec-${codec}`, 1000);
      assert.ok(sameBits(w, sgdStep(initial, rounded, SGD.lr)), codec);
      assert.ok(!sameBits(rounded, grad), 'the gradient was rounded');
    }
    // A top-k push: the values left out arrive as zeros, the kept ones bit for bit.
    const initial = await initW('codec-sparse', 1000);
    const sparseGrad = randomTensor(1000, 78).map((x, i) => (i % 10 === 3 ? x : 0));
    const header = { trial: 'codec-sparse', epoch: 0, batch: 0, worker: 'w0', codec: 'sparse' };
    await client.push(header, whole('w', 1000), new Map([['w', sparseGrad]]));
    const { w } = await pullW('codec-sparse', 1000);
    assert.ok(sameBits(w, sgdStep(initial, sparseGrad, SGD.lr)), 'sparse');
    const Raw = parameterServerProto().ParameterServer;
    const raw = new Raw(client.address, grpc.credentials.createInsecure());
    try {
      const refused = new Promise((resolve, reject) => {
        const call = raw.Push((err, value) => (err ? reject(err) : resolve(value)));
        call.write({ header: { trial: 'codec-bf16', epoch: 0, batch: 1, codec: 'zip' } });
        call.end();
      });
      await assert.rejects(refused, (err: unknown) => {
        withCode(grpc.status.INVALID_ARGUMENT)(err);
        assert.match(errorMessage(err), /unknown value codec "zip"/);
        assert.equal(refusalOf(err), 'bad_header');
        return true;
      });
    } finally {
      raw.close();
    }
  });

  it('moves a 10 MB tensor intact through Init, Pull and Push', async () => {
    const n = 2_500_000;
    const initial = await initW('big', n);
    const pulled = await pullW('big', n);
    assert.equal(pulled.version, 0);
    assert.ok(sameBits(pulled.w, initial), 'pulled values differ from the initial ones');

    const grad = randomTensor(n, 7);
    const reply = await push('big', 0, grad);
    assert.deepEqual(reply, { accepted: true, duplicate: false, version: 1 });
    const after = await pullW('big', n);
    assert.equal(after.version, 1);
    assert.ok(sameBits(after.w, sgdStep(initial, grad, SGD.lr)), 'update differs from θ - lr·g');
    const stats = await client.stats('big');
    assert.deepEqual(stats.refused, {});
    assert.equal(stats.batches_applied, 1);
    assert.equal(stats.elements, n);
    assert.ok(await client.drop('big'));
  });

  it('applies a repeated (trial, epoch, batch) once', async () => {
    const initial = await initW('dup', 10);
    const grad = randomTensor(10, 3);
    const first = await push('dup', 4, grad);
    const second = await push('dup', 4, grad);
    assert.deepEqual(first, { accepted: true, duplicate: false, version: 1 });
    assert.deepEqual(second, { accepted: false, duplicate: true, version: 1 });
    assert.ok(sameBits((await pullW('dup', 10)).w, sgdStep(initial, grad, SGD.lr)));
    const stats = await client.stats('dup');
    assert.equal(stats.batches_applied, 1);
    assert.equal(stats.refused.duplicate, 1);
  });

  it('refuses NaN and wrong-length gradients without touching the parameters', async () => {
    const initial = await initW('bad', 10);
    const nan = randomTensor(10, 4);
    nan[6] = Number.NaN;
    await assert.rejects(push('bad', 0, nan), (err: unknown) => {
      withCode(grpc.status.INVALID_ARGUMENT)(err);
      assert.match(errorMessage(err), /tensor w has a non-finite value \(NaN\) at element 6/);
      return true;
    });
    await assert.rejects(
      push('bad', 1, new Float32Array(9)),
      withCode(grpc.status.INVALID_ARGUMENT),
    );
    const long = client.push(
      { trial: 'bad', epoch: 0, batch: 2 },
      [{ name: 'w', start: 0, length: 11, shard: 0 }],
      new Map([['w', new Float32Array(11)]]),
    );
    await assert.rejects(long, withCode(grpc.status.INVALID_ARGUMENT));

    const { version, w } = await pullW('bad', 10);
    assert.equal(version, 0);
    assert.ok(sameBits(w, initial), 'a refused push changed the parameters');
    const stats = await client.stats('bad');
    assert.deepEqual(stats.refused, { non_finite: 1, bad_shape: 2 });
    // A refused batch was not recorded as seen: its honest retry applies.
    assert.equal((await push('bad', 0, new Float32Array(10).fill(1))).accepted, true);
  });

  it('PushPull applies once and answers with the values right after the push', async () => {
    const n = 300_000; // over one 1 MB chunk each way
    const initial = await initW('pp', n);
    const grad = randomTensor(n, 5);
    const slices = whole('w', n);
    const header = { trial: 'pp', epoch: 0, batch: 1, worker: 'w0', version: 0 };
    const into = new Map([['w', new Float32Array(n)]]);
    const reply = await client.pushPull(header, slices, new Map([['w', grad]]), into);
    assert.deepEqual(reply, { accepted: true, duplicate: false, version: 1 });
    const expected = sgdStep(initial, grad, SGD.lr);
    assert.ok(sameBits(into.get('w')!, expected), 'values differ from θ - lr·g');
    const pulled = await pullW('pp', n);
    assert.equal(pulled.version, 1);
    assert.ok(sameBits(pulled.w, expected), 'a Pull disagrees with what PushPull sent');

    // A retry of the same batch is a duplicate that still brings the values back.
    into.get('w')!.fill(0);
    const again = await client.pushPull(header, slices, new Map([['w', grad]]), into);
    assert.deepEqual(again, { accepted: false, duplicate: true, version: 1 });
    assert.ok(sameBits(into.get('w')!, expected));

    // A refused gradient: the push's status, no values, nothing applied.
    const nan = randomTensor(n, 6);
    nan[n - 1] = Number.NaN;
    await assert.rejects(
      client.pushPull({ ...header, batch: 2 }, slices, new Map([['w', nan]]), into),
      (err: unknown) => {
        withCode(grpc.status.INVALID_ARGUMENT)(err);
        assert.match(errorMessage(err), /non-finite value \(NaN\) at element 299999/);
        return true;
      },
    );
    const stats = await client.stats('pp');
    assert.equal(stats.batches_applied, 1);
    assert.deepEqual(stats.refused, { duplicate: 1, non_finite: 1 });
    assert.ok(sameBits((await pullW('pp', n)).w, expected));
    assert.ok(await client.drop('pp'));
  });

  it('sync mode applies the average of a step once all its batches arrived', async () => {
    const initial = await initW('sync', 4, { mode: 'sync' });
    const g1 = Float32Array.of(1, 2, 3, 4);
    const g2 = Float32Array.of(3, 2, 1, 0);
    const first = await push('sync', 0, g1, { step: 0, step_size: 2 });
    assert.deepEqual(first, { accepted: true, duplicate: false, version: 0 });
    assert.ok(sameBits((await pullW('sync', 4)).w, initial), 'half a step was applied');

    const second = await push('sync', 1, g2, { step: 0, step_size: 2 });
    assert.deepEqual(second, { accepted: true, duplicate: false, version: 1 });
    const mean = Float32Array.of(2, 2, 2, 2);
    assert.ok(sameBits((await pullW('sync', 4)).w, sgdStep(initial, mean, SGD.lr)));
    assert.equal((await client.stats('sync')).batches_applied, 2);

    await assert.rejects(push('sync', 2, g1, { step: 0, step_size: 2 }), (err: unknown) => {
      withCode(grpc.status.FAILED_PRECONDITION)(err);
      assert.equal(refusalOf(err), 'stale', 'the status names its refusal, not only a code');
      assert.equal(isTransientRefusal(err), true);
      return true;
    });
    assert.equal((await push('sync', 1, g2, { step: 0, step_size: 2 })).duplicate, true);
    assert.deepEqual((await client.stats('sync')).refused, { stale: 1, duplicate: 1 });
  });

  it('a sync PushPull answers once its step is applied, or past step_wait_ms with the values as they are', async () => {
    const initial = await initW('sync-pp', 4, { mode: 'sync' });
    const slices = whole('w', 4);
    const g1 = Float32Array.of(1, 2, 3, 4);
    const g2 = Float32Array.of(3, 2, 1, 0);
    const header = { trial: 'sync-pp', epoch: 0, worker: 'w0', version: 0, step_size: 2 };
    const into = new Map([['w', new Float32Array(4)]]);
    const waiting = client.pushPull(
      { ...header, batch: 0, step: 0, step_wait_ms: 5_000 },
      slices,
      new Map([['w', g1]]),
      into,
    );
    let answered = false;
    void waiting.then(() => (answered = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, false, 'answered before its step was complete');
    await push('sync-pp', 1, g2, { step: 0, step_size: 2 });
    assert.deepEqual(await waiting, { accepted: true, duplicate: false, version: 1 });
    const afterStep = sgdStep(initial, Float32Array.of(2, 2, 2, 2), SGD.lr);
    assert.ok(sameBits(into.get('w')!, afterStep), 'values are not those of the applied step');

    // Nobody sends the step's other batch: the reply comes after the wait, at the old version.
    const started = Date.now();
    const alone = await client.pushPull(
      { ...header, batch: 2, step: 1, step_wait_ms: 150 },
      slices,
      new Map([['w', g1]]),
      into,
    );
    assert.ok(Date.now() - started >= 140, `answered after ${Date.now() - started} ms`);
    assert.deepEqual(alone, { accepted: true, duplicate: false, version: 1 });
    assert.ok(sameBits(into.get('w')!, afterStep));
    assert.ok(await client.drop('sync-pp'));
  });

  it("keeps epoch-end snapshots for the evaluation while the next epoch's pushes apply", async () => {
    const initial = await initW('snap', 16);
    const g = randomTensor(16, 9);
    await push('snap', 0, g);
    const atEnd0 = sgdStep(initial, g, SGD.lr);
    await client.applied('snap', { snapshotEpoch: 0 });
    await push('snap', 1, g); // epoch 1 goes on
    await client.applied('snap', { snapshotEpoch: 1 });
    await push('snap', 2, g);
    const read = async (snapshotEpoch?: number) => {
      const into = new Map([['w', new Float32Array(16)]]);
      const pulled = await client.pull('snap', whole('w', 16), into, { snapshotEpoch });
      return { ...pulled, w: into.get('w')! };
    };
    const zero = await read(0);
    assert.deepEqual([zero.version, zero.fromSnapshot], [1, true]);
    assert.ok(sameBits(zero.w, atEnd0), "epoch 0's snapshot holds the values at its end");
    assert.deepEqual([(await read(1)).version, (await read()).version], [2, 3]);
    // A snapshot stays for an evaluation run again; only the two newest are kept, and one the
    // shard does not hold reads the live values.
    const again = await read(0);
    assert.deepEqual([again.version, again.fromSnapshot], [1, true]);
    for (const epoch of [5, 6, 7]) await client.applied('snap', { snapshotEpoch: epoch });
    assert.deepEqual(
      [(await read(5)).fromSnapshot, (await read(6)).fromSnapshot, (await read(7)).fromSnapshot],
      [false, true, true],
    );
    assert.ok(await client.drop('snap'));
  });

  it('pull waits for min_version, then answers DEADLINE_EXCEEDED after wait_ms', async () => {
    await initW('wait', 3);
    const t0 = Date.now();
    await assert.rejects(
      client.pull('wait', whole('w', 3), new Map([['w', new Float32Array(3)]]), {
        minVersion: 1,
        waitMs: 300,
      }),
      withCode(grpc.status.DEADLINE_EXCEEDED),
    );
    const waited = Date.now() - t0;
    assert.ok(waited >= 280 && waited < 3_000, `waited ${waited} ms`);
  });

  it('a waiting pull answers as soon as a push reaches its min_version', async () => {
    await initW('wake', 3);
    const pulled = client.pull('wake', whole('w', 3), new Map([['w', new Float32Array(3)]]), {
      minVersion: 1,
      waitMs: 5_000,
    });
    await new Promise((r) => setTimeout(r, 50));
    await push('wake', 0, Float32Array.of(1, 1, 1));
    assert.deepEqual(await pulled, { version: 1, fromSnapshot: false });
  });

  it('an AbortSignal cancels a waiting pull', async () => {
    await initW('abort', 3);
    const controller = new AbortController();
    const pulled = client.pull('abort', whole('w', 3), new Map([['w', new Float32Array(3)]]), {
      minVersion: 9,
      waitMs: 5_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pulled, withCode(grpc.status.CANCELLED));
  });

  it('answers NOT_FOUND for a trial it does not hold', async () => {
    const into = new Map([['w', new Float32Array(3)]]);
    await assert.rejects(
      client.pull('nobody', whole('w', 3), into),
      withCode(grpc.status.NOT_FOUND),
    );
    await assert.rejects(push('nobody', 0, new Float32Array(3)), withCode(grpc.status.NOT_FOUND));
    const stats = await client.stats('nobody');
    assert.equal(stats.held, false);
    assert.ok((stats.refused.unknown_trial ?? 0) >= 1);
  });

  it('Drop frees the trial at once', async () => {
    await initW('drop', 3);
    assert.equal((await client.stats('drop')).held, true);
    assert.equal(await client.drop('drop'), true);
    assert.equal((await client.stats('drop')).held, false);
    assert.equal(await client.drop('drop'), false);
    await assert.rejects(pullW('drop', 3), withCode(grpc.status.NOT_FOUND));
  });

  it('a streamed Init names BatchNorm moving statistics: a push averages into them instead of stepping; a momentum outside (0, 1) is refused', async () => {
    const values = randomTensor(6, 9);
    const header = { optimizer: SGD, mode: 'async' as const, slices: whole('w', 6) };
    await client.init(
      'moving',
      { ...header, movingAverages: { w: 0.75 } },
      new Map([['w', values]]),
    );
    const statistic = randomTensor(6, 10);
    await push('moving', 0, statistic);
    const expected = values.map((v, i) => 0.75 * v + 0.25 * statistic[i]);
    const { w } = await pullW('moving', 6);
    w.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${v} vs ${expected[i]}`));
    await assert.rejects(
      client.init('moving2', { ...header, movingAverages: { w: 1 } }, new Map([['w', values]])),
      withCode(grpc.status.INVALID_ARGUMENT),
    );
  });

  it("ssp:N refuses a push whose values miss more than N of other workers' updates, as stale, changing nothing; a worker's own updates do not count; a duplicate is still answered as one", async () => {
    const values = randomTensor(5, 11);
    const header = { optimizer: SGD, mode: 'async' as const, slices: whole('w', 5) };
    await client.init('ssp', { ...header, maxStaleness: 2 }, new Map([['w', values]]));
    const at = (batch: number, version: number, worker = 'w0') => {
      const h = { trial: 'ssp', epoch: 0, batch, worker, version };
      return client.push(h, whole('w', 5), new Map([['w', randomTensor(5, batch)]]));
    };
    for (let b = 0; b < 3; b++) await at(b, b, 'w1');
    const before = (await pullW('ssp', 5)).w;
    await assert.rejects(at(3, 0), (err: unknown) => {
      withCode(grpc.status.FAILED_PRECONDITION)(err);
      assert.equal(refusalOf(err), 'stale');
      assert.match(
        errorMessage(err),
        /computed from version 0, 3 updates of other workers behind .* ssp:2 refuses more than 2/,
      );
      return true;
    });
    assert.ok(sameBits((await pullW('ssp', 5)).w, before), 'a stale push changes nothing');
    assert.deepEqual(await at(0, 0), { accepted: false, duplicate: true, version: 3 });
    assert.equal((await at(3, 1)).accepted, true, 'two versions behind is within ssp:2');
    // w1's values of version 1 miss w0's batch 3 and its own batches 1 and 2: one counts.
    assert.equal((await at(4, 1, 'w1')).accepted, true, "a worker's own updates do not count");
    const stats = await client.stats('ssp');
    assert.equal(stats.refused.stale, 1);
    assert.equal(stats.batches_applied, 5);
    await assert.rejects(
      client.init(
        'ssp-sync',
        { ...header, mode: 'sync', maxStaleness: 2 },
        new Map([['w', values]]),
      ),
      withCode(grpc.status.INVALID_ARGUMENT),
    );
  });

  it('refuses an Init with a bad optimizer config or mode', async () => {
    const values = new Map([['w', new Float32Array(4)]]);
    const badLr = { ...SGD, lr: 0 };
    await assert.rejects(
      client.init('x', { optimizer: badLr, mode: 'async', slices: whole('w', 4) }, values),
      withCode(grpc.status.INVALID_ARGUMENT),
    );
    await assert.rejects(
      client.init('x', { optimizer: SGD, mode: 'bsp' as 'sync', slices: whole('w', 4) }, values),
      withCode(grpc.status.INVALID_ARGUMENT),
    );
  });

  it('refuses a malformed stream (a chunk before the header) with INVALID_ARGUMENT', async () => {
    const Raw = parameterServerProto().ParameterServer;
    const raw = new Raw(client.address, grpc.credentials.createInsecure());
    try {
      const reply = new Promise((resolve, reject) => {
        const call = raw.Push((err, value) => (err ? reject(err) : resolve(value)));
        call.write({ chunk: { name: 'w', offset: 0, data: Buffer.alloc(4) } });
        call.end();
      });
      await assert.rejects(reply, withCode(grpc.status.INVALID_ARGUMENT));
      const empty = new Promise((resolve, reject) => {
        raw.Init((err, value) => (err ? reject(err) : resolve(value))).end();
      });
      await assert.rejects(empty, withCode(grpc.status.INVALID_ARGUMENT));
      // The header claims 5 elements of w but only 4 are sent.
      const uncovered = new Promise((resolve, reject) => {
        const call = raw.Init((err, value) => (err ? reject(err) : resolve(value)));
        const slices = [{ name: 'w', start: 0, length: 5 }];
        call.write({ header: { trial: 'gap', optimizer: SGD, mode: 'async', slices } });
        call.write({ chunk: { name: 'w', offset: 0, data: Buffer.alloc(16) } });
        call.end();
      });
      await assert.rejects(uncovered, (err: unknown) => {
        withCode(grpc.status.INVALID_ARGUMENT)(err);
        assert.match(errorMessage(err), /w\[0, 5\): elements from 4 are missing/);
        return true;
      });
      assert.equal((await client.stats('gap')).held, false);
    } finally {
      raw.close();
    }
  });
});

describe('client and shard lifecycle', () => {
  it('closes with await using, and a closed shard refuses calls with UNAVAILABLE', async () => {
    let address: string;
    {
      await using shard = new ParameterServerShard();
      address = await shard.start();
      const c = new ParameterServerClient(address, { deadlineMs: 2_000 });
      try {
        assert.equal((await c.stats('t')).held, false);
      } finally {
        c.close();
      }
    }
    const late = new ParameterServerClient(address, { deadlineMs: 2_000 });
    try {
      await assert.rejects(late.stats('t'), withCode(grpc.status.UNAVAILABLE));
    } finally {
      late.close();
    }
  });

  it('rejects locally, before any I/O, when a tensor named by a slice is missing', async () => {
    const c = new ParameterServerClient('127.0.0.1:1', { deadlineMs: 2_000 });
    try {
      await assert.rejects(
        c.push({ trial: 't', epoch: 0, batch: 0 }, whole('w', 3), new Map()),
        withCode(grpc.status.INVALID_ARGUMENT),
      );
    } finally {
      c.close();
    }
  });

  it('validates ShardOptions at construction', () => {
    assert.throws(() => new ParameterServerShard({ port: 70_000 }), /port 70000/);
    assert.throws(() => new ParameterServerShard({ maxPullWaitMs: -1 }), /maxPullWaitMs/);
    assert.throws(() => new ParameterServerShard({ id: '' }), /id must be/);
  });
});

describe('a trial split across two shards', () => {
  it('re-assembles in pull', async () => {
    const shards = [
      new ParameterServerShard({ id: 'ps-0' }),
      new ParameterServerShard({ id: 'ps-1' }),
    ];
    const clients: ParameterServerClient[] = [];
    try {
      for (const s of shards) clients.push(new ParameterServerClient(await s.start()));
      const shapes = [
        { name: 'dense/kernel', shape: [100, 30] },
        { name: 'dense/bias', shape: [30] },
      ];
      const placement = placeTensors(shapes, 2, { splitThreshold: 1_000 });
      const kernelShards = new Set(
        placement.filter((s) => s.name === 'dense/kernel').map((s) => s.shard),
      );
      assert.deepEqual(
        [...kernelShards].sort(),
        [0, 1],
        'the kernel should be split across both shards',
      );

      const values = new Map(
        shapes.map((t, i) => [
          t.name,
          randomTensor(
            t.shape.reduce((a, b) => a * b),
            10 + i,
          ),
        ]),
      );
      await Promise.all(
        clients.map((c, i) =>
          c.init(
            'split',
            { optimizer: SGD, mode: 'async', slices: slicesOnShard(placement, i) },
            values,
          ),
        ),
      );
      const into = new Map(
        shapes.map((t) => [t.name, new Float32Array(values.get(t.name)!.length)]),
      );
      const versions = await Promise.all(
        clients.map((c, i) => c.pull('split', slicesOnShard(placement, i), into)),
      );
      assert.deepEqual(versions, [
        { version: 0, fromSnapshot: false },
        { version: 0, fromSnapshot: false },
      ]);
      for (const [name, v] of values) assert.ok(sameBits(into.get(name)!, v), `${name} differs`);
    } finally {
      for (const c of clients) c.close();
      await Promise.all(shards.map((s) => s.close()));
    }
  });

  it("draws each shard's slices from the seed when the Init is seeded: the same values as the whole model; a tensor it does not describe is refused", async () => {
    const shards = [new ParameterServerShard(), new ParameterServerShard()];
    const clients = (await Promise.all(shards.map((s) => s.start()))).map(
      (a) => new ParameterServerClient(a),
    );
    try {
      const params: ParamInfo[] = [
        { name: 'dense/kernel', shape: [100, 30], init: 'he_normal', fanIn: 100, fanOut: 30 },
        { name: 'dense/bias', shape: [30], init: 'zeros', fanIn: 100, fanOut: 30 },
      ];
      const placement = placeTensors(params, 2, { splitThreshold: 1_000 });
      const seeded = seededInit(params, 9);
      const header = (i: number) => ({
        optimizer: SGD,
        mode: 'async' as const,
        slices: slicesOnShard(placement, i),
      });
      await Promise.all(clients.map((c, i) => c.init('seeded', header(i), seeded)));
      const expected = initialParameters(params, 9);
      const into = new Map(
        params.map((p) => [p.name, new Float32Array(expected.get(p.name)!.length)]),
      );
      await Promise.all(clients.map((c, i) => c.pull('seeded', slicesOnShard(placement, i), into)));
      for (const [name, v] of expected) assert.ok(sameBits(into.get(name)!, v), `${name} differs`);

      await assert.rejects(
        clients[0].init('bad', header(0), seededInit(params.slice(1), 9)),
        (err: grpc.ServiceError) =>
          err.code === grpc.status.INVALID_ARGUMENT &&
          /no initializer for dense\/kernel/.test(err.details),
      );
    } finally {
      for (const c of clients) c.close();
      await Promise.all(shards.map((s) => s.close()));
    }
  });
});
