import * as grpc from '@grpc/grpc-js';
import type { ParameterServerHandlers } from '../proto/gen/caviar/v1/ParameterServer';
import type { ChunkSessionAnswer } from '../proto/gen/caviar/v1/ChunkSessionAnswer';
import type { ChunkSessionRequest__Output } from '../proto/gen/caviar/v1/ChunkSessionRequest';
import type { PushReply } from '../proto/gen/caviar/v1/PushReply';
import type { CallStatus } from '../proto/gen/caviar/v1/CallStatus';
import { packChunks } from '../core/tensor-codec';
import type { ValueCodec } from '../core/value-codec';
import type { ShardCore } from './shard-core';
import type { SliceRange } from './slice-assembler';
import { answerCodec } from './header-codecs';
import { valueChunks, writeMessages } from './slice-stream';
import { RequestInbox } from './request-inbox';
import { SessionStreams } from './session-streams';
import { losesPushAnswer, type ShardReplies } from './rpc-reply';
import type { ShardObserver } from './shard-observer';

type SessionCall = grpc.ServerDuplexStream<ChunkSessionRequest__Output, ChunkSessionAnswer>;

/** An answer's messages: the reply first, the values' chunks packed after it, the last flagged. */
function* answerMessages(
  reply: PushReply,
  slices: readonly SliceRange[],
  values: readonly Float32Array[],
  codec: ValueCodec,
  observer: ShardObserver | undefined,
): Generator<ChunkSessionAnswer> {
  // Each chunk's bytes its own: a view of the trial's arrays would change under a later push.
  const chunks = valueChunks(slices, values, codec, observer, true);
  let previous: ChunkSessionAnswer | undefined;
  for (const pack of packChunks(chunks)) {
    if (previous) yield previous;
    previous = { chunks: pack, last: false, ...(previous ? {} : { outcome: { reply } }) };
  }
  yield { ...previous!, last: true };
}

const refusedAnswer = (refused: CallStatus): ChunkSessionAnswer => ({
  outcome: { refused },
  chunks: [],
  last: true,
});

/**
 * The cross-machine counterpart of SegmentSession: a worker's push-pulls over chunks as the
 * requests of one long-lived ChunkSession stream, run one after another and answered in order, a
 * refusal as a status in its answer (the stream goes on). A request's chunks are assembled as
 * they arrive; one that breaks the protocol (no header, a second one) ends the stream.
 */
export class ChunkSessions {
  private readonly sessions = new SessionStreams<SessionCall>();

  constructor(
    private readonly core: ShardCore,
    private readonly replies: ShardReplies,
  ) {}

  handlers(): Pick<ParameterServerHandlers, 'ChunkSession'> {
    return { ChunkSession: (call) => this.session(call) };
  }

  /** Ends every session, after the requests it has in hand. */
  endSessions(): void {
    this.sessions.endAll();
  }

  private session(call: SessionCall): void {
    let previous = Promise.resolve();
    let receiving: RequestInbox | undefined;
    let broken = false;
    const breakOff = (details: string): void => {
      broken = true;
      receiving?.abandon();
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details });
    };
    call.on('data', (msg: ChunkSessionRequest__Output) => {
      if (broken) return;
      if (!receiving) {
        // Ended: the worker sees the end and retries. A request begun before still completes.
        if (!this.sessions.has(call)) return;
        if (!msg.header) return breakOff('a session request began without a header');
        const inbox = (receiving = new RequestInbox(msg.header));
        previous = previous.then(() => this.answer(call, inbox));
      } else if (msg.header) {
        return breakOff('a session request sent a second header');
      }
      receiving.add(msg.chunks, msg.last);
      if (msg.last) receiving = undefined;
    });
    const abandon = (): void => receiving?.abandon();
    call.on('end', abandon);
    call.on('cancelled', abandon);
    call.on('error', abandon);
    this.sessions.add(call, () => previous);
  }

  /** Applies one request's push and writes its answer: the values right after it, or the refusal. */
  private async answer(call: SessionCall, inbox: RequestInbox): Promise<void> {
    const { core } = this;
    const observer = core.options.observer;
    let applied: Awaited<ReturnType<ShardCore['applyPush']>>;
    try {
      applied = await core.applyPush(async (slot) => {
        const current = (slot.current = core.receiveChunks(inbox.header));
        await inbox.read((chunk) => {
          current.assembler?.add(chunk);
          observer?.bytesIn(chunk.data.length);
        });
      });
    } catch (err) {
      await inbox.discard();
      if (!call.cancelled) call.write(refusedAnswer(this.replies.callStatus(err, 'ChunkSession')));
      return;
    }
    if (losesPushAnswer()) return;
    const { reply, trial, header } = applied;
    let after: typeof trial;
    try {
      after = await core.afterStep(header, trial, call);
    } catch (err) {
      if (!call.cancelled) call.write(refusedAnswer(this.replies.callStatus(err, 'ChunkSession')));
      return;
    }
    const codec = answerCodec(header);
    try {
      // The arrays are read in place, each chunk copied as it is encoded: no model-sized copy.
      await core.lendValues(after, undefined, false, (values, version) =>
        writeMessages(
          call,
          answerMessages({ ...reply, version }, after.slices, values, codec, observer),
        ),
      );
    } catch (err) {
      // Part of the answer may be out: the stream cannot carry on.
      if (!call.cancelled) call.emit('error', this.replies.toStatus(err, 'ChunkSession'));
    }
  }
}
