import type * as grpc from '@grpc/grpc-js';
import type { ParameterServerHandlers } from '../proto/gen/caviar/v1/ParameterServer';
import type { PullMessage } from '../proto/gen/caviar/v1/PullMessage';
import type { PullRequest__Output } from '../proto/gen/caviar/v1/PullRequest';
import type { PushMessage__Output } from '../proto/gen/caviar/v1/PushMessage';
import type { PushPullMessage } from '../proto/gen/caviar/v1/PushPullMessage';
import type { AppliedPush, ShardCore } from './shard-core';
import { RefusedInputError } from './refusal';
import { writeSlices } from './slice-stream';
import { answerCodec } from './header-codecs';
import { pullValueCodec } from '../core/value-codec';
import {
  consume,
  losesPushAnswer,
  pushCallback,
  type ReadableCall,
  type ShardReplies,
} from './rpc-reply';

type ChunkRpcs = Pick<ParameterServerHandlers, 'Push' | 'Pull' | 'PushPull'>;

/**
 * The chunk transport: gradients and values as streams of TensorChunk messages, the path of
 * workers on other machines (and of any worker without a shared segment).
 */
export function chunkHandlers(core: ShardCore, replies: ShardReplies): ChunkRpcs {
  const observer = core.options.observer;

  /** A streamed push: its header, then chunks. */
  const push = (call: ReadableCall<PushMessage__Output>): Promise<AppliedPush> =>
    core.applyPush(async (slot) => {
      await consume(call, (msg) => {
        const current = slot.current;
        if (msg.header) {
          if (current)
            throw new RefusedInputError(
              'bad_header',
              `push for trial ${current.header.trial} sent a second header`,
            );
          if (msg.header.segment)
            throw new RefusedInputError('bad_header', 'a streamed push named a segment region');
          slot.current = core.receiveChunks(msg.header);
        } else if (msg.chunk) {
          if (!current)
            throw new RefusedInputError('bad_header', 'push stream sent a chunk before its header');
          current.assembler?.add(msg.chunk);
          observer?.bytesIn(msg.chunk.data.length);
        }
      });
    });

  const pull = async (
    call: grpc.ServerWritableStream<PullRequest__Output, PullMessage>,
  ): Promise<void> => {
    const codec = pullValueCodec(call.request.codec);
    const { trial, snapshot } = await core.pullSource(call.request, call);
    const from_snapshot = snapshot !== undefined;
    await core.lendValues(trial, snapshot, true, (values, version) => {
      const head = { header: { version, from_snapshot } };
      return writeSlices(call, trial.slices, values, head, codec, observer);
    });
  };

  /** Push, then the trial's slices right after it, on one call (async-mode workers). */
  const pushPull = async (
    call: grpc.ServerDuplexStream<PushMessage__Output, PushPullMessage>,
  ): Promise<void> => {
    const { reply, trial, header } = await push(call);
    if (losesPushAnswer()) return;
    const after = await core.afterStep(header, trial, call);
    const codec = answerCodec(header);
    await core.lendValues(after, undefined, true, (values, version) =>
      writeSlices(call, after.slices, values, { reply: { ...reply, version } }, codec, observer),
    );
  };

  return {
    Push: (call, callback) =>
      replies.reply(async () => (await push(call)).reply, pushCallback(callback)),
    Pull: (call) => replies.stream(call, 'Pull', () => pull(call)),
    PushPull: (call) => replies.stream(call, 'PushPull', () => pushPull(call)),
  };
}
