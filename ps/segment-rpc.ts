import * as grpc from '@grpc/grpc-js';
import type { ParameterServerHandlers } from '../proto/gen/caviar/v1/ParameterServer';
import type { PullHeader } from '../proto/gen/caviar/v1/PullHeader';
import type { PullRequest__Output } from '../proto/gen/caviar/v1/PullRequest';
import type { PushHeader__Output } from '../proto/gen/caviar/v1/PushHeader';
import type { PushReply } from '../proto/gen/caviar/v1/PushReply';
import type { SegmentRegion__Output } from '../proto/gen/caviar/v1/SegmentRegion';
import type { SessionReply } from '../proto/gen/caviar/v1/SessionReply';
import { InvalidArgumentError } from '../core/errors';
import { runYielding } from '../core/yielding';
import { AttachedSegments } from './attached-segments';
import type { Snapshot } from './epoch-snapshots';
import { RefusedInputError } from './refusal';
import { gradientName, type AppliedPush, type PushInProgress, type ShardCore } from './shard-core';
import type { TrialShard } from './trial-shard';
import type { CancellableCall } from './version-waits';
import { losesPushAnswer, pushCallback, type ShardReplies } from './rpc-reply';
import { SessionStreams } from './session-streams';

type SegmentRpcs = Pick<
  ParameterServerHandlers,
  'Attach' | 'SegmentPush' | 'SegmentPushPull' | 'SegmentPull' | 'SegmentSession'
>;

type SessionCall = grpc.ServerDuplexStream<PushHeader__Output, SessionReply>;

/**
 * The same-host transport: a worker on this machine attaches a shared-memory segment, and its
 * pushes and pulls name regions of it instead of streaming chunks. Push-pulls also come as the
 * messages of one long-lived SegmentSession stream per worker.
 */
export class SegmentTransport {
  private readonly segments: AttachedSegments;
  private readonly sessions = new SessionStreams<SessionCall>();

  constructor(
    private readonly core: ShardCore,
    private readonly replies: ShardReplies,
  ) {
    this.segments = new AttachedSegments(core.options.sharedMemoryDir, core.options.id);
  }

  handlers(): SegmentRpcs {
    const { replies } = this;
    return {
      Attach: (call, callback) =>
        replies.reply(
          () => this.segments.attach(call.request.segment, call.request.token),
          callback,
        ),
      SegmentPush: (call, callback) =>
        replies.reply(async () => (await this.push(call.request)).reply, pushCallback(callback)),
      SegmentPushPull: (call, callback) =>
        replies.reply(() => this.pushPull(call.request, call), pushCallback(callback)),
      SegmentSession: (call) => this.session(call),
      SegmentPull: (call, callback) => replies.reply(() => this.pull(call), callback),
    };
  }

  /** Ends every session, after its request in hand: a session lasts as long as its worker. */
  endSessions(): void {
    this.sessions.endAll();
  }

  detach(): void {
    this.segments.close();
  }

  /** A push whose gradient is in the segment region its header names. */
  private push(header: PushHeader__Output): Promise<AppliedPush> {
    return this.core.applyPush(async (slot) => {
      const segment = header.segment;
      if (!segment) throw new RefusedInputError('bad_header', 'the push names no segment region');
      const trial = this.core.requireTrial(header.trial);
      const current: PushInProgress = (slot.current = { header, trial });
      if (!trial.isDuplicate(header.epoch, header.batch)) {
        const gradient = this.segments.gradient(segment, trial.slices);
        await runYielding(gradient.check(gradientName(header)));
        current.gradient = gradient;
        this.core.options.observer?.bytesIn(trial.elements * 4);
      }
    });
  }

  /** A pull whose slices go into the region the request names. */
  private async pull(
    call: grpc.ServerUnaryCall<PullRequest__Output, unknown>,
  ): Promise<PullHeader> {
    const into = call.request.into;
    if (!into) throw new InvalidArgumentError('the pull names no segment region');
    const { trial, snapshot } = await this.core.pullSource(call.request, call);
    const version = await this.write(into, trial, snapshot);
    return { version, from_snapshot: snapshot !== undefined };
  }

  /** A push, then the values written back into its region. */
  private async pushPull(header: PushHeader__Output, call: CancellableCall): Promise<PushReply> {
    const { reply, trial } = await this.push(header);
    const after = await this.core.afterStep(header, trial, call);
    const version = await this.write(header.segment!, after);
    return { ...reply, version };
  }

  /** Writes the trial's slices (or a snapshot of them) into `region`; the version they are at. */
  private write(
    region: SegmentRegion__Output,
    trial: TrialShard,
    snapshot?: Snapshot,
  ): Promise<number> {
    return this.core.lendValues(trial, snapshot, false, async (values, version) => {
      await runYielding(this.segments.write(region, trial.slices, values));
      this.core.options.observer?.bytesOut(trial.elements * 4);
      return version;
    });
  }

  /**
   * Push-pulls as the messages of one stream, run one after another and answered in order, a
   * refusal as a status in its answer (the stream goes on). The stream ends when the worker's
   * does, or when the shard closes.
   */
  private session(call: SessionCall): void {
    let previous = Promise.resolve();
    call.on('data', (header: PushHeader__Output) => {
      if (!this.sessions.has(call)) return; // ended: the worker sees the end and retries
      previous = previous.then(async () => {
        let answer: SessionReply;
        try {
          answer = { reply: await this.pushPull(header, call) };
        } catch (err) {
          answer = { refused: this.replies.callStatus(err, 'SegmentSession') };
        }
        if (answer.reply && losesPushAnswer()) return;
        if (!call.cancelled) call.write(answer);
      });
    });
    this.sessions.add(call, () => previous);
  }
}
