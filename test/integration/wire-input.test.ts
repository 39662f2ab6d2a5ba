import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { resolveOptimizerConfig } from '../../core/optimizer-config';
import { ParameterServerClient } from '../../core/ps-client';
import { parameterServerProto } from '../../core/rpc';
import { seededUniform } from '../../core/seeded-random';
import { ParameterServerShard } from '../../ps';
import type { PushMessage } from '../../proto/gen/caviar/v1/PushMessage';

/**
 * RELIABILITY.md rows 19 and 20: bytes that are not a message, a frame cut short and a message
 * over the receive limit reach a real shard over a real socket; each gets an error status, the
 * shard keeps serving, and the trial it holds is unchanged.
 */
const PUSH_PATH = '/caviar.v1.ParameterServer/Push';
const LENGTH = 1_000;
const slices = [{ name: 'w', start: 0, length: LENGTH, shard: 0 }];

/** Sends `messages` (already serialized) on a Push stream; resolves to the call's status code. */
function rawPush(address: string, messages: Buffer[]): Promise<grpc.status> {
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<grpc.status>((resolve) => {
    const call = raw.makeClientStreamRequest<Buffer, Buffer>(
      PUSH_PATH,
      (b) => b,
      (b) => b,
      { deadline: new Date(Date.now() + 10_000) },
      (err) => {
        raw.close();
        resolve(err ? err.code : grpc.status.OK);
      },
    );
    call.on('error', () => undefined);
    for (const m of messages) call.write(m);
    call.end();
  });
}

/** Serializes a PushMessage as the generated service definition does. */
function encode(message: PushMessage): Buffer {
  const definition = parameterServerProto().ParameterServer.service.Push;
  return definition.requestSerialize(message);
}

describe('malformed and oversized input on the wire', () => {
  let shard: ParameterServerShard;
  let address: string;
  let client: ParameterServerClient;
  const initial = Float32Array.from({ length: LENGTH }, (_, i) => Math.sin(i));

  before(async () => {
    shard = new ParameterServerShard({ id: 'ps-wire', closeGraceMs: 1_000 });
    address = await shard.start();
    client = new ParameterServerClient(address, { deadlineMs: 10_000 });
    const optimizer = resolveOptimizerConfig({ kind: 'sgd', lr: 0.1 });
    await client.init('t', { optimizer, mode: 'async', slices }, new Map([['w', initial]]));
  });
  after(async () => {
    client.close();
    await shard.close();
  });

  async function assertUnchanged(): Promise<void> {
    const into = new Map([['w', new Float32Array(LENGTH)]]);
    const { version } = await client.pull('t', slices, into);
    assert.equal(version, 0);
    assert.deepEqual(into.get('w'), initial);
    const stats = await client.stats('t');
    assert.equal(stats.batches_applied, 0);
  }

  it('random bytes as Push messages get an error status each; the trial stays as it was', async () => {
    for (let seed = 1; seed <= 8; seed++) {
      const next = seededUniform(seed);
      const junk = Buffer.from(Array.from({ length: 64 + seed * 37 }, () => (next() * 256) | 0));
      const code = await rawPush(address, [junk, junk]);
      assert.notEqual(code, grpc.status.OK, `seed ${seed} was accepted`);
    }
    await assertUnchanged();
  });

  it('a gRPC frame cut short gets an error status, not a hung call', async () => {
    const session = http2.connect(`http://${address}`);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': PUSH_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const status = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no status within 10 s')), 10_000);
        const settle = (headers: http2.IncomingHttpHeaders): void => {
          const code = headers['grpc-status'];
          if (code === undefined) return;
          clearTimeout(timer);
          resolve(String(code));
        };
        stream.on('response', settle);
        stream.on('trailers', settle);
        stream.on('error', () => undefined);
        stream.resume();
      });
      // A message header promising 1,000 bytes, then 10 of them, then the end of the stream.
      const frame = Buffer.alloc(15);
      frame.writeUInt8(0, 0);
      frame.writeUInt32BE(1_000, 1);
      stream.end(frame);
      const code = await status;
      assert.notEqual(code, '0', 'a cut frame was accepted');
    } finally {
      session.destroy();
    }
    await assertUnchanged();
  });

  it('a message over the 8 MB receive limit is refused with RESOURCE_EXHAUSTED', async () => {
    const header = encode({ header: { trial: 't', epoch: 0, batch: 1, worker: 'w0' } });
    const huge = encode({ chunk: { name: 'w', offset: 0, data: Buffer.alloc(9 << 20) } });
    const code = await rawPush(address, [header, huge]);
    assert.equal(code, grpc.status.RESOURCE_EXHAUSTED, `got ${grpc.status[code]}`);
    await assertUnchanged();
    // The chunked path still carries the same push, once it is the right size.
    const grad = new Float32Array(LENGTH).fill(1);
    const reply = await client.push(
      { trial: 't', epoch: 0, batch: 1, worker: 'w0', version: 0 },
      slices,
      new Map([['w', grad]]),
    );
    assert.ok(reply.accepted, JSON.stringify(reply));
  });
});
