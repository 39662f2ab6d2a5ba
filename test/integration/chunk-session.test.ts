import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../core/errors';
import { refusalOf } from '../../core/call-status';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import { placeTensors, slicesOnShard, type Slice } from '../../core/placement';
import { ParameterServerClient } from '../../core/ps-client';
import { bindServer, parameterServerProto, SERVER_OPTIONS } from '../../core/rpc';
import { seededUniform } from '../../core/seeded-random';
import { encodeFloat32 } from '../../core/tensor-codec';
import { ParameterServerShard } from '../../ps';
import { ShardCore } from '../../ps/shard-core';
import { ShardReplies } from '../../ps/rpc-reply';
import { resolveShardOptions } from '../../ps/shard-options';
import { adminHandlers } from '../../ps/admin-rpc';
import { chunkHandlers } from '../../ps/chunk-rpc';
import type { ChunkSessionAnswer__Output } from '../../proto/gen/caviar/v1/ChunkSessionAnswer';
import type { ChunkSessionRequest } from '../../proto/gen/caviar/v1/ChunkSessionRequest';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';

const ADAM = resolveOptimizerConfig({ kind: 'adam', lr: 1e-2 });

/** A 1.4 MB tensor (more than one message each way) and a small one. */
const PARAMS = [
  { name: 'w', shape: [700, 500] },
  { name: 'b', shape: [500] },
];
const SLICES: Slice[] = slicesOnShard(placeTensors(PARAMS, 1), 0);

function randomValues(seed: number): Map<string, Float32Array> {
  const next = seededUniform(seed);
  return new Map(
    PARAMS.map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      return [p.name, Float32Array.from({ length: n }, () => next() * 2 - 1)];
    }),
  );
}

function zeros(): Map<string, Float32Array> {
  return new Map(PARAMS.map((p) => [p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1))]));
}

function sameBits(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  return [...a].every(([name, x]) =>
    Buffer.from(x.buffer).equals(Buffer.from(b.get(name)!.buffer)),
  );
}

function withCode(code: grpc.status, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.equal((err as { code?: number }).code, code, `got ${errorMessage(err)}`);
    if (pattern) assert.match(errorMessage(err), pattern);
    return true;
  };
}

const header = (trial: string, batch: number, extra: Partial<PushHeader> = {}): PushHeader => ({
  trial,
  epoch: 0,
  batch,
  worker: 'w0',
  version: 0,
  ...extra,
});

/** A shard as one built before ChunkSession: chunk calls and admin calls only. */
async function shardWithoutSessions(): Promise<{ address: string; server: grpc.Server }> {
  const core = new ShardCore(resolveShardOptions({ id: 'ps-old' }));
  await core.restore();
  const replies = new ShardReplies(undefined);
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(parameterServerProto().ParameterServer.service, {
    ...adminHandlers(core, replies),
    ...chunkHandlers(core, replies),
  });
  const address = await bindServer(server, '127.0.0.1', 0, grpc.ServerCredentials.createInsecure());
  return { address, server };
}

/** Reads a raw ChunkSession's answers until one is flagged last, or the stream fails. */
function nextAnswer(
  call: grpc.ClientDuplexStream<ChunkSessionRequest, ChunkSessionAnswer__Output>,
): Promise<ChunkSessionAnswer__Output[]> {
  return new Promise((resolve, reject) => {
    const got: ChunkSessionAnswer__Output[] = [];
    const onData = (msg: ChunkSessionAnswer__Output): void => {
      got.push(msg);
      if (!msg.last) return;
      call.off('data', onData).off('error', reject);
      resolve(got);
    };
    call.on('data', onData).on('error', reject);
  });
}

describe('ChunkSession: push-pulls over chunks on one long-lived stream', () => {
  let shard: ParameterServerShard;
  let old: { address: string; server: grpc.Server };
  let client: ParameterServerClient;
  let oldClient: ParameterServerClient;
  let raw: InstanceType<ReturnType<typeof parameterServerProto>['ParameterServer']>;

  before(async () => {
    shard = new ParameterServerShard({ id: 'ps-session', closeGraceMs: 500 });
    const address = await shard.start();
    old = await shardWithoutSessions();
    client = new ParameterServerClient(address, { deadlineMs: 5_000 });
    oldClient = new ParameterServerClient(old.address, { deadlineMs: 5_000 });
    raw = new (parameterServerProto().ParameterServer)(address, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    oldClient.close();
    raw.close();
    old.server.forceShutdown();
    await shard.close();
  });

  const init = (c: ParameterServerClient, trial: string) =>
    c.init(trial, { optimizer: ADAM, mode: 'async', slices: SLICES }, randomValues(1));

  it('gives the replies and values, bit for bit, that PushPull calls give a shard without sessions', async () => {
    await init(client, 't');
    await init(oldClient, 't');
    for (let batch = 0; batch < 4; batch++) {
      const grads = randomValues(10 + batch);
      const a = zeros();
      const b = zeros();
      const ra = await client.pushPull(header('t', batch), SLICES, grads, a);
      const rb = await oldClient.pushPull(header('t', batch), SLICES, grads, b);
      assert.deepEqual(ra, rb);
      assert.equal(ra.version, batch + 1);
      assert.ok(sameBits(a, b), `batch ${batch}: the session's values differ from the call's`);
    }
    // A repeat is answered as such, with the values, and changes nothing.
    const again = zeros();
    const repeat = await client.pushPull(header('t', 2), SLICES, randomValues(12), again);
    assert.deepEqual(repeat, { accepted: false, duplicate: true, version: 4 });
    const pulled = zeros();
    assert.equal((await client.pull('t', SLICES, pulled)).version, 4);
    assert.ok(sameBits(again, pulled));
    assert.equal((await client.stats('t')).batches_applied, 4);
  });

  it('answers a refusal on the stream and goes on with the next request', async () => {
    await init(client, 'r');
    await assert.rejects(
      client.pushPull(header('missing', 0), SLICES, randomValues(2), zeros()),
      (err: unknown) => withCode(grpc.status.NOT_FOUND)(err) && refusalOf(err) === 'unknown_trial',
    );
    const nan = randomValues(3);
    nan.get('w')![123_456] = Number.NaN;
    await assert.rejects(
      client.pushPull(header('r', 0), SLICES, nan, zeros()),
      withCode(grpc.status.INVALID_ARGUMENT, /non-finite|NaN/),
    );
    const reply = await client.pushPull(header('r', 1), SLICES, randomValues(4), zeros());
    assert.deepEqual(reply, { accepted: true, duplicate: false, version: 1 });
  });

  it('sends values as bf16 when a push-pull or pull asks, and keeps float32 on the shard', async () => {
    await init(client, 'c');
    const rounded = zeros();
    await client.pushPull(header('c', 0, { pull_codec: 'bf16' }), SLICES, randomValues(5), rounded);
    const exact = zeros();
    await client.pull('c', SLICES, exact);
    const viaPull = zeros();
    await client.pull('c', SLICES, viaPull, { codec: 'bf16' });
    assert.ok(sameBits(rounded, viaPull), 'the pull and the push-pull round differently');
    let inexact = 0;
    for (const [name, x] of exact) {
      const y = rounded.get(name)!;
      for (let i = 0; i < x.length; i++) {
        assert.ok(Math.abs(x[i] - y[i]) <= Math.abs(x[i]) * 2 ** -8, `${name}[${i}]`);
        if (x[i] !== y[i]) inexact += 1;
      }
    }
    assert.ok(inexact > 0, 'bf16 values came back exact: nothing was rounded');
    await assert.rejects(
      client.pushPull(header('c', 1, { pull_codec: 'sparse' }), SLICES, randomValues(6), zeros()),
      withCode(grpc.status.INVALID_ARGUMENT, /sparse/),
    );
  });

  it('refuses a bad pull codec before the push applies, and a request without a header ends the stream', async () => {
    await init(client, 'p');
    const call = raw.ChunkSession();
    const chunks = SLICES.map((s) => ({
      name: s.name,
      offset: s.start,
      data: encodeFloat32(new Float32Array(s.length)),
    }));
    call.write({ header: header('p', 0, { pull_codec: 'zip' }), chunks, last: true });
    const [refused] = await nextAnswer(call);
    assert.equal(refused.outcome?.refused?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(refused.outcome?.refused?.refusal, 'bad_header');
    assert.match(refused.outcome?.refused?.details ?? '', /zip/);
    assert.equal((await client.stats('p')).version, 0);
    const ended = nextAnswer(call);
    call.write({ chunks, last: true });
    await assert.rejects(ended, withCode(grpc.status.INVALID_ARGUMENT, /without a header/));
  });

  it('applies nothing of a request whose stream ends before its last message', async () => {
    await init(client, 'cut');
    const call = raw.ChunkSession();
    const failed = nextAnswer(call);
    call.write({
      header: header('cut', 0),
      chunks: [{ name: 'w', offset: 0, data: encodeFloat32(new Float32Array(1000)) }],
      last: false,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    call.cancel();
    await assert.rejects(failed, withCode(grpc.status.CANCELLED));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await client.stats('cut')).version, 0);
    const reply = await client.pushPull(header('cut', 0), SLICES, randomValues(7), zeros());
    assert.deepEqual(reply, { accepted: true, duplicate: false, version: 1 });
  });
});
