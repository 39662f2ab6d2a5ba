import type { ChunkSessionAnswer__Output } from '../../proto/gen/caviar/v1/ChunkSessionAnswer';
import type { ChunkSessionRequest } from '../../proto/gen/caviar/v1/ChunkSessionRequest';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';
import type { PushReply__Output } from '../../proto/gen/caviar/v1/PushReply';
import { sliceElements, type Slice } from '../placement';
import { packChunks, writeChunk } from '../tensor-codec';
import type { ValueCodec } from '../value-codec';
import { refusalError, type AnswerReader } from '../push-session';
import { pullTargets, headerCodec, sliceChunks } from './chunk-messages';

/**
 * One push-pull's request on a ChunkSession stream: the header on the first message, the
 * gradient's chunks packed into messages of up to about 1 MB, the last one flagged.
 */
export function* sessionRequest(
  header: PushHeader,
  slices: readonly Slice[],
  grads: ReadonlyMap<string, Float32Array>,
): Generator<ChunkSessionRequest> {
  const chunks = sliceChunks(slices, grads, headerCodec(header));
  let first = true;
  let previous: ChunkSessionRequest | undefined;
  for (const pack of packChunks(chunks)) {
    if (previous) yield previous;
    previous = { chunks: pack, last: false, ...(first ? { header } : {}) };
    first = false;
  }
  yield { ...previous!, last: true };
}

/**
 * Reads a ChunkSession answer into the full tensors of `into`: the outcome first (a refusal ends
 * it), then chunks of `slices` in `codec`, until the message flagged last, which must bring the
 * count to the slices' elements.
 */
export function chunkSessionAnswer(
  slices: readonly Slice[],
  into: Map<string, Float32Array>,
  codec: ValueCodec,
): AnswerReader<ChunkSessionAnswer__Output> {
  const expected = sliceElements(slices);
  const target = pullTargets(slices, into);
  let reply: PushReply__Output | undefined;
  let received = 0;
  return (msg) => {
    if (msg.outcome) {
      if (reply) throw new Error('an answer carried a second outcome');
      if (!msg.outcome.reply) {
        if (!msg.last || msg.chunks.length > 0) throw new Error('values came after a refusal');
        return { refused: refusalError(msg.outcome.refused) };
      }
      reply = msg.outcome.reply;
    } else if (!reply) {
      throw new Error('values came before the reply');
    }
    for (const chunk of msg.chunks) received += writeChunk(chunk, target, codec);
    if (!msg.last) return undefined;
    if (received !== expected) throw new Error(`got ${received} of ${expected} elements`);
    return { reply };
  };
}
