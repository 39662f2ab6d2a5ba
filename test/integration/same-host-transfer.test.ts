import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../core/errors';
import { refusalOf } from '../../core/call-status';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import { placeTensors, slicesOnShard, type Slice } from '../../core/placement';
import { ParameterServerClient } from '../../core/ps-client';
import { parameterServerProto } from '../../core/rpc';
import { seededUniform } from '../../core/seeded-random';
import { SharedSegment, sliceLayout } from '../../core/shared-segment';
import { ParameterServerShard } from '../../ps';
import type { AttachReply__Output } from '../../proto/gen/caviar/v1/AttachReply';
import type { PushReply__Output } from '../../proto/gen/caviar/v1/PushReply';

const ADAM = resolveOptimizerConfig({ kind: 'adam', lr: 1e-2 });

/** Two tensors, the first cut in two slices: the segment holds three ranges back to back. */
const PARAMS = [
  { name: 'w', shape: [300, 7] },
  { name: 'b', shape: [7] },
];

function slices(): Slice[] {
  // Cut w by placing it on 2 shards and taking both pieces as this shard's.
  const cut = placeTensors(PARAMS, 2).map((s) => ({ ...s, shard: 0 }));
  return slicesOnShard(cut, 0);
}

function randomValues(seed: number, nanAt = -1): Map<string, Float32Array> {
  const next = seededUniform(seed);
  return new Map(
    PARAMS.map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const values = Float32Array.from({ length: n }, () => next() * 2 - 1);
      if (p.name === 'w' && nanAt >= 0) values[nanAt] = Number.NaN;
      return [p.name, values];
    }),
  );
}

function zeros(): Map<string, Float32Array> {
  return new Map(PARAMS.map((p) => [p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1))]));
}

function sameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  return [...a].every(([name, x]) => {
    const y = b.get(name)!;
    return Buffer.from(x.buffer).equals(Buffer.from(y.buffer));
  });
}

function withCode(code: grpc.status, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.equal((err as { code?: number }).code, code, `got ${errorMessage(err)}`);
    if (pattern) assert.match(errorMessage(err), pattern);
    return true;
  };
}

function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `caviar-shm-${label}-`));
}

describe('same-host transfer through shared-memory segments', () => {
  const dir = tempDir('shard');
  let shard: ParameterServerShard;
  let address: string;
  let viaSegment: ParameterServerClient;
  let viaChunks: ParameterServerClient;

  before(async () => {
    shard = new ParameterServerShard({ id: 'ps-shm', sharedMemoryDir: dir, closeGraceMs: 500 });
    address = await shard.start();
    viaSegment = new ParameterServerClient(address, { deadlineMs: 5_000, sharedMemoryDir: dir });
    viaChunks = new ParameterServerClient(address, { deadlineMs: 5_000 });
  });
  after(async () => {
    viaSegment.close();
    viaChunks.close();
    await shard.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function init(trial: string, mode: 'sync' | 'async' = 'async'): Promise<void> {
    const header = { optimizer: ADAM, mode, slices: slices() };
    await viaChunks.init(trial, header, randomValues(1));
  }

  function header(trial: string, batch: number) {
    return { trial, epoch: 0, batch, worker: 'w0', version: 0 };
  }

  it('gives the same values, bit for bit, as chunks, and leaves no file behind', async () => {
    await init('seg');
    await init('chunks');
    for (let batch = 0; batch < 3; batch++) {
      const grads = randomValues(10 + batch);
      const a = zeros();
      const b = zeros();
      const ra = await viaSegment.pushPull(header('seg', batch), slices(), grads, a);
      const rb = await viaChunks.pushPull(header('chunks', batch), slices(), grads, b);
      assert.deepEqual(ra, rb);
      assert.ok(sameBits(a, b), `batch ${batch}: the segment's values differ from the chunks'`);
      await viaSegment.push(header('seg', 100 + batch), slices(), grads);
      await viaChunks.push(header('chunks', 100 + batch), slices(), grads);
    }
    const a = zeros();
    const b = zeros();
    assert.equal((await viaSegment.pull('seg', slices(), a)).version, 6);
    assert.equal((await viaChunks.pull('chunks', slices(), b)).version, 6);
    assert.ok(sameBits(a, b), 'pulled values differ');
    assert.equal(viaSegment.transport, 'segment');
    assert.equal(viaChunks.transport, 'chunks');
    // The segment was unlinked once attached: it lives only as long as the two processes.
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("reads an epoch-end snapshot through the segment while the next epoch's pushes apply", async () => {
    await init('snap');
    const atEnd = zeros();
    await viaSegment.pushPull(header('snap', 0), slices(), randomValues(6), atEnd);
    await viaSegment.applied('snap', { snapshotEpoch: 0 });
    await viaSegment.push(header('snap', 1), slices(), randomValues(7));
    const snap = zeros();
    const pulled = await viaSegment.pull('snap', slices(), snap, { snapshotEpoch: 0 });
    assert.deepEqual(pulled, { version: 1, fromSnapshot: true });
    assert.ok(sameBits(atEnd, snap));
  });

  it('answers a sync push once its step is applied, with the values after it', async () => {
    await init('sync', 'sync');
    const step = { step: 0, step_size: 2 };
    const values = zeros();
    const waiting = viaSegment.pushPull(
      { ...header('sync', 0), ...step, step_wait_ms: 5_000 },
      slices(),
      randomValues(8),
      values,
    );
    await viaChunks.push({ ...header('sync', 1), ...step }, slices(), randomValues(9));
    assert.equal((await waiting).version, 1);
    const pulled = zeros();
    assert.equal((await viaChunks.pull('sync', slices(), pulled)).version, 1);
    assert.ok(sameBits(values, pulled), 'the reply carries other values than the applied step');
    // A late push for the applied step, on the session stream: refused, its reason named.
    await assert.rejects(
      viaSegment.pushPull({ ...header('sync', 2), ...step }, slices(), randomValues(7), zeros()),
      (err: unknown) => {
        withCode(grpc.status.FAILED_PRECONDITION, /step 0 is already applied/)(err);
        assert.equal(refusalOf(err), 'stale');
        return true;
      },
    );
  });

  it('answers a repeated batch duplicate and still returns the values', async () => {
    await init('dup');
    const grads = randomValues(3);
    const first = zeros();
    const again = zeros();
    await viaSegment.pushPull(header('dup', 0), slices(), grads, first);
    const reply = await viaSegment.pushPull(header('dup', 0), slices(), grads, again);
    assert.equal(reply.duplicate, true);
    assert.ok(sameBits(first, again));
  });

  it('refuses a non-finite gradient read from a segment and changes nothing', async () => {
    await init('nan');
    const before = zeros();
    await viaSegment.pull('nan', slices(), before);
    await assert.rejects(
      viaSegment.pushPull(header('nan', 0), slices(), randomValues(5, 17), zeros()),
      withCode(grpc.status.INVALID_ARGUMENT, /non-finite value \(NaN\) at element 17/),
    );
    const now = zeros();
    assert.equal((await viaSegment.pull('nan', slices(), now)).version, 0);
    assert.ok(sameBits(before, now));
    assert.equal((await viaSegment.stats('nan')).refused.non_finite, 1);
  });

  it('streams chunks for a client whose folder the shard cannot see', async () => {
    const elsewhere = tempDir('elsewhere');
    const client = new ParameterServerClient(address, { sharedMemoryDir: elsewhere });
    try {
      await init('far');
      const values = zeros();
      const reply = await client.pushPull(header('far', 0), slices(), randomValues(2), values);
      assert.equal(reply.version, 1);
      assert.match(client.transport, /^chunks \(segment caviar-[0-9a-f]+ cannot be opened here/);
      assert.ok(
        values.get('b')!.some((v) => v !== 0),
        'no values came back',
      );
      assert.deepEqual(fs.readdirSync(elsewhere), []);
    } finally {
      client.close();
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses a wrong token, a name that is not a segment, a region of another layout, and a region on a stream', async () => {
    const Raw = parameterServerProto().ParameterServer;
    const raw = new Raw(address, grpc.credentials.createInsecure());
    const segment = SharedSegment.create(dir);
    const attach = (name: string, token: Buffer) =>
      new Promise<AttachReply__Output>((resolve, reject) =>
        raw.Attach({ segment: name, token }, (err, reply) => (err ? reject(err) : resolve(reply!))),
      );
    try {
      const wrong = await attach(segment.name, Buffer.alloc(16, 1));
      assert.equal(wrong.attached, false);
      assert.match(wrong.reason, /does not begin with the token/);
      const escape = await attach('../etc/passwd', segment.token);
      assert.equal(escape.attached, false);
      assert.match(escape.reason, /is not a segment name/);
      assert.equal((await attach(segment.name, segment.token)).attached, true);

      await init('layout');
      const elements = slices().reduce((n, s) => n + s.length, 0);
      const offset = await segment.take(elements * 4);
      const push = (layout: number, count: number) =>
        new Promise<PushReply__Output>((resolve, reject) => {
          const region = { segment: segment.name, offset, elements: count, layout };
          raw.SegmentPush({ ...header('layout', 0), segment: region }, (err, reply) =>
            err ? reject(err) : resolve(reply!),
          );
        });
      // A streamed push carries chunks: a segment region there is refused, not half-honoured.
      const streamed = new Promise<PushReply__Output>((resolve, reject) => {
        const call = raw.Push((err, reply) => (err ? reject(err) : resolve(reply!)));
        const region = { segment: segment.name, offset, elements, layout: sliceLayout(slices()) };
        call.write({ header: { ...header('layout', 0), segment: region } });
        call.end();
      });
      await assert.rejects(
        streamed,
        withCode(grpc.status.INVALID_ARGUMENT, /a streamed push named a segment region/),
      );
      await assert.rejects(
        push(sliceLayout(slices().reverse()), elements),
        withCode(grpc.status.INVALID_ARGUMENT, /lays out the slices differently/),
      );
      await assert.rejects(
        push(sliceLayout(slices()), elements - 1),
        withCode(grpc.status.INVALID_ARGUMENT, /holds \d+ values; the trial has \d+ here/),
      );
      // The region is all zeros (a finite gradient): with the right layout it applies.
      assert.equal((await push(sliceLayout(slices()), elements)).version, 1);
    } finally {
      segment.close();
      raw.close();
    }
  });

  it("a shard closing ends the workers' open session streams instead of waiting them out", async () => {
    const own = new ParameterServerShard({
      id: 'ps-close',
      sharedMemoryDir: dir,
      closeGraceMs: 10_000,
    });
    const client = new ParameterServerClient(await own.start(), { sharedMemoryDir: dir });
    try {
      const header = { optimizer: ADAM, mode: 'async' as const, slices: slices() };
      await client.init('close', header, randomValues(1));
      await client.pushPull(
        { trial: 'close', epoch: 0, batch: 0, worker: 'w0', version: 0 },
        slices(),
        randomValues(2),
        zeros(),
      );
      const started = Date.now();
      await own.close();
      assert.ok(Date.now() - started < 2_000, `close took ${Date.now() - started} ms`);
    } finally {
      client.close();
    }
  });

  it('attaches a new segment after the shard restarts', async () => {
    const port = Number(address.split(':').pop());
    const client = new ParameterServerClient(address, { deadlineMs: 5_000, sharedMemoryDir: dir });
    let restarted: ParameterServerShard | undefined;
    try {
      await init('restart');
      await client.pushPull(header('restart', 0), slices(), randomValues(4), zeros());
      await shard.close();
      restarted = new ParameterServerShard({ id: 'ps-shm', port, sharedMemoryDir: dir });
      await restarted.start();
      shard = restarted;
      await init('restart');
      // The new process never opened the old segment: UNAVAILABLE, which workers retry.
      await assert.rejects(
        client.pushPull(header('restart', 0), slices(), randomValues(4), zeros()),
        withCode(grpc.status.UNAVAILABLE, /is not attached to shard ps-shm/),
      );
      const values = zeros();
      const reply = await client.pushPull(header('restart', 0), slices(), randomValues(4), values);
      assert.equal(reply.version, 1);
      assert.equal(client.transport, 'segment');
    } finally {
      client.close();
    }
  });
});

describe('SharedSegment regions', () => {
  it('hands a freed region to the next call and grows the file for concurrent ones', async () => {
    const dir = tempDir('regions');
    const segment = SharedSegment.create(dir);
    try {
      const a = await segment.take(1000);
      const b = await segment.take(1000);
      assert.notEqual(a, b);
      assert.equal(a % 64, 0);
      assert.ok(b >= a + 1000);
      segment.give(a);
      assert.equal(await segment.take(900), a);
      assert.ok(fs.fstatSync(segment.fd).size >= b + 1000);
      // Regions large enough to grow in several pieces, taken at once, do not overlap.
      const big = 20 << 20;
      const [c, d] = await Promise.all([segment.take(big), segment.take(big)]);
      assert.ok(Math.abs(c - d) >= big, `regions at ${c} and ${d}`);
      assert.ok(fs.fstatSync(segment.fd).size >= Math.max(c, d) + big);
    } finally {
      segment.close();
      assert.deepEqual(fs.readdirSync(dir), []);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
