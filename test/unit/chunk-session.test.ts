import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { TensorChunk__Output } from '../../proto/gen/caviar/v1/TensorChunk';
import { packChunks } from '../../core/tensor-codec';
import { valueCodec } from '../../core/value-codec';
import { chunkSessionAnswer, sessionRequest } from '../../core/shard-transport/chunk-session';
import { RequestInbox } from '../../ps/request-inbox';

const chunk = (name: string, bytes: number) => ({ name, offset: 0, data: Buffer.alloc(bytes) });
const F32 = valueCodec('f32');

describe('chunk session messages', () => {
  it('packs chunks into messages of at most the limit, a larger chunk alone, always one message', () => {
    const sizes = (packs: Iterable<Array<{ data: Buffer }>>) =>
      [...packs].map((p) => p.map((c) => c.data.length));
    assert.deepEqual(
      sizes(
        packChunks(
          [chunk('a', 6), chunk('b', 3), chunk('c', 2), chunk('d', 20), chunk('e', 1)],
          10,
        ),
      ),
      [[6, 3], [2], [20], [1]],
    );
    assert.deepEqual(sizes(packChunks([], 10)), [[]]);
  });

  it('puts the header on the first message and flags only the last', () => {
    const slices = [{ name: 'w', start: 0, length: 600_000, shard: 0 }];
    const grads = new Map([['w', new Float32Array(600_000)]]);
    const messages = [...sessionRequest({ trial: 't', batch: 3 }, slices, grads)];
    assert.ok(messages.length >= 3, `${messages.length} messages for 2.4 MB`);
    assert.deepEqual(
      messages.map((m) => [m.header?.batch, m.last]),
      messages.map((_, i) => [i === 0 ? 3 : undefined, i === messages.length - 1]),
    );
    const elements = messages
      .flatMap((m) => m.chunks ?? [])
      .reduce((n, c) => n + (c.data as Buffer).length / 4, 0);
    assert.equal(elements, 600_000);
  });

  it('reads an answer into the tensors and checks its shape', () => {
    const slices = [{ name: 'w', start: 2, length: 3, shard: 0 }];
    const into = new Map([['w', new Float32Array(5)]]);
    const read = chunkSessionAnswer(slices, into, F32);
    const reply = { accepted: true, duplicate: false, version: 7 };
    const part = (values: number[], offset: number): TensorChunk__Output => ({
      name: 'w',
      offset,
      data: Buffer.from(new Float32Array(values).buffer),
    });
    assert.equal(
      read({ outcome: { reply, outcome: 'reply' }, chunks: [part([1, 2], 2)], last: false }),
      undefined,
    );
    assert.deepEqual(read({ outcome: null, chunks: [part([3], 4)], last: true }), { reply });
    assert.deepEqual([...into.get('w')!], [0, 0, 1, 2, 3]);

    const short = chunkSessionAnswer(slices, new Map([['w', new Float32Array(5)]]), F32);
    assert.throws(
      () => short({ outcome: { reply, outcome: 'reply' }, chunks: [part([1], 2)], last: true }),
      /1 of 3/,
    );
    const early = chunkSessionAnswer(slices, new Map([['w', new Float32Array(5)]]), F32);
    assert.throws(
      () => early({ outcome: null, chunks: [part([1], 2)], last: false }),
      /before the reply/,
    );
    const refused = chunkSessionAnswer(
      slices,
      into,
      F32,
    )({
      outcome: {
        refused: { code: grpc.status.NOT_FOUND, details: 'no trial', refusal: 'unknown_trial' },
        outcome: 'refused',
      },
      chunks: [],
      last: true,
    });
    assert.ok(refused && 'refused' in refused);
    assert.equal(refused.refused.code, grpc.status.NOT_FOUND);
    assert.deepEqual(refused.refused.metadata.get('caviar-refusal'), ['unknown_trial']);
  });
});

describe('RequestInbox', () => {
  const c = (offset: number): TensorChunk__Output => ({ name: 'w', offset, data: Buffer.alloc(4) });

  it('hands held chunks and later ones to the sink in order, and resolves at the last', async () => {
    const inbox = new RequestInbox({ trial: 't' } as never);
    inbox.add([c(0), c(1)], false);
    const seen: number[] = [];
    const done = inbox.read((chunk) => seen.push(chunk.offset));
    inbox.add([c(2)], true);
    await done;
    assert.deepEqual(seen, [0, 1, 2]);
  });

  it("rejects with the sink's error, and discard waits for the request's last message", async () => {
    const inbox = new RequestInbox({ trial: 't' } as never);
    const read = inbox.read(() => {
      throw new Error('bad chunk');
    });
    inbox.add([c(0)], false);
    await assert.rejects(read, /bad chunk/);
    inbox.add([c(1)], false);
    let discarded = false;
    const discard = inbox.discard().then(() => (discarded = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(discarded, false);
    inbox.add([c(2)], true);
    await discard;
    assert.equal(discarded, true);
  });

  it('fails a read when the stream ends before the last message', async () => {
    const inbox = new RequestInbox({ trial: 't' } as never);
    const read = inbox.read(() => {});
    inbox.abandon();
    await assert.rejects(read, /ended mid-request/);
  });
});
