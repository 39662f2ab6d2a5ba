import * as grpc from '@grpc/grpc-js';
import type { PushHeader } from '../../proto/gen/caviar/v1/PushHeader';
import type { PushReply__Output } from '../../proto/gen/caviar/v1/PushReply';
import type { PullHeader__Output } from '../../proto/gen/caviar/v1/PullHeader';
import type { Slice } from '../placement';
import { deadlineIn } from '../rpc';
import { errorMessage } from '../errors';
import { isDefiniteAnswer } from '../call-status';
import { callError, unaryCall } from '../grpc-calls';
import { SegmentLink, type LentRegion } from '../segment-link';
import type { SessionReply__Output } from '../../proto/gen/caviar/v1/SessionReply';
import { PushSession, refusalError, type AnswerReader } from '../push-session';
import { pullRequest } from './pull-request';
import type { ShardConnection, ShardTransport } from './shard-transport';

/** A SegmentSession answer is one message: the reply, or the refusal. */
const segmentAnswer: AnswerReader<SessionReply__Output> = (answer) =>
  answer.reply ? { reply: answer.reply } : { refused: refusalError(answer.refused) };

/**
 * Values through a shared-memory segment that the shard attached (core/segment-link.ts): a call
 * names a region of it and carries one small message each way, and push-pulls are messages of
 * one long-lived session stream (core/push-session.ts). A call that gets no region (the shard
 * cannot attach: another machine, an older shard; or an attach that failed this time) goes
 * through `fallback` instead, so the choice of segment or chunks can change while the client
 * lives without its callers knowing.
 */
export class SameHostTransport implements ShardTransport {
  private readonly link: SegmentLink;
  private readonly session: PushSession<PushHeader, SessionReply__Output>;

  constructor(
    private readonly connection: ShardConnection,
    sharedMemoryDir: string,
    private readonly fallback: ShardTransport,
  ) {
    const { client, deadlineMs } = connection;
    this.link = new SegmentLink(sharedMemoryDir, (segment, token) =>
      unaryCall((cb) =>
        client.Attach({ segment, token }, { deadline: deadlineIn(deadlineMs) }, cb),
      ),
    );
    this.session = new PushSession(() => client.SegmentSession(), deadlineMs);
  }

  get description(): string {
    return this.link.transport;
  }

  async prepare(): Promise<void> {
    await this.link.attached();
  }

  readonly pull: ShardTransport['pull'] = async (trial, slices, into, options = {}) => {
    const { request, deadline } = pullRequest(trial, options, this.connection.deadlineMs);
    const lent = await this.lendRegion(slices);
    if (!lent) return this.fallback.pull(trial, slices, into, { ...options, deadline });
    const withRegion = { ...request, into: lent.region };
    const head = await this.viaSegment<PullHeader__Output>(
      lent,
      () =>
        unaryCall(
          (cb) => this.connection.client.SegmentPull(withRegion, { deadline }, cb),
          options.signal,
        ),
      into,
    );
    return { version: head.version, fromSnapshot: head.from_snapshot };
  };

  readonly pushPull: ShardTransport['pushPull'] = async (
    header,
    slices,
    grads,
    into,
    options = {},
  ) => {
    const deadline = options.deadline ?? deadlineIn(this.connection.deadlineMs);
    const lent = await this.lendRegion(slices, grads);
    if (!lent) return this.fallback.pushPull(header, slices, grads, into, { ...options, deadline });
    const withRegion = { ...header, segment: lent.region };
    return this.viaSegment(
      lent,
      () => this.segmentPushPull(withRegion, deadline, options.signal),
      into,
    );
  };

  readonly push: ShardTransport['push'] = async (header, slices, grads, options = {}) => {
    const deadline = options.deadline ?? deadlineIn(this.connection.deadlineMs);
    const lent = await this.lendRegion(slices, grads);
    if (!lent) return this.fallback.push(header, slices, grads, { ...options, deadline });
    const withRegion = { ...header, segment: lent.region };
    return this.viaSegment(lent, () =>
      unaryCall(
        (cb) => this.connection.client.SegmentPush(withRegion, { deadline }, cb),
        options.signal,
      ),
    );
  };

  close(): void {
    this.session.close();
    this.link.close();
    this.fallback.close();
  }

  /** A segment region for a call moving the values of `slices`, with `send` already in it. */
  private async lendRegion(
    slices: readonly Slice[],
    send?: ReadonlyMap<string, Float32Array>,
  ): Promise<LentRegion | undefined> {
    const lent = await this.link.lendRegion(slices);
    if (lent && send) {
      try {
        await lent.put(send);
      } catch (err) {
        lent.end(true);
        throw callError(grpc.status.INVALID_ARGUMENT, errorMessage(err));
      }
    }
    return lent;
  }

  /**
   * Sends a request that names `lent`'s region; once it is answered, the region's values come
   * out into `into` (when given) and the region is freed.
   */
  private async viaSegment<H>(
    lent: LentRegion,
    send: () => Promise<H>,
    into?: Map<string, Float32Array>,
  ): Promise<H> {
    try {
      const head = await send();
      if (into) await lent.get(into);
      lent.end(true);
      return head;
    } catch (err) {
      // Keep the segment where the shard answered (a refusal writes nothing later); drop it where
      // it may still be at work on the region (a deadline, a cancel, a broken connection).
      lent.end(isDefiniteAnswer(err));
      throw err;
    }
  }

  /** A push-pull on the session stream, or as a call where the shard has no sessions. */
  private segmentPushPull(
    header: PushHeader,
    deadline: Date,
    signal: AbortSignal | undefined,
  ): Promise<PushReply__Output> {
    // Without sessions (an older shard) the region still holds the gradient for the call.
    const call = (): Promise<PushReply__Output> =>
      unaryCall((cb) => this.connection.client.SegmentPushPull(header, { deadline }, cb), signal);
    return this.session.requestOr([header], segmentAnswer, call, signal, deadline);
  }
}
