import * as grpc from '@grpc/grpc-js';
import type { PushHeader__Output } from '../proto/gen/caviar/v1/PushHeader';
import type { TensorChunk__Output } from '../proto/gen/caviar/v1/TensorChunk';
import { CaviarError } from '../core/errors';

type Sink = (chunk: TensorChunk__Output) => void;

/**
 * One request of a session stream while its messages arrive: its header, and its chunks held
 * until the request's turn comes (the one before may still be answering), then handed to a sink
 * as they arrive, so that a gradient is assembled while the rest of it is still on the wire.
 */
export class RequestInbox {
  private held: TensorChunk__Output[] = [];
  private sink: Sink | undefined;
  private complete = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(readonly header: PushHeader__Output) {}

  /** The chunks of one message of this request; `last` ends it. */
  add(chunks: readonly TensorChunk__Output[], last: boolean): void {
    if (this.sink && !this.failure) {
      try {
        for (const chunk of chunks) this.sink(chunk);
      } catch (err) {
        // The rest of the request is still read (and dropped): the next one starts after it.
        this.failure = err instanceof Error ? err : new Error(String(err));
      }
    } else if (!this.sink) {
      this.held.push(...chunks);
    }
    if (last) this.complete = true;
    if (last || this.failure) this.wake?.();
  }

  /** The stream ended or broke before this request's last message. */
  abandon(): void {
    if (this.complete) return;
    this.failure ??= new CaviarError(grpc.status.CANCELLED, 'the session ended mid-request');
    this.complete = true;
    this.wake?.();
  }

  /**
   * Feeds every chunk to `sink`, those held first; resolves at the request's last message,
   * rejects with what the sink threw or once the stream ends before it.
   */
  async read(sink: Sink): Promise<void> {
    this.sink = sink;
    const held = this.held;
    this.held = [];
    this.add(held, this.complete);
    await this.until(() => this.complete || this.failure !== undefined);
    if (this.failure) throw this.failure;
  }

  /** Drops the rest of the request; resolves once it has all arrived (or the stream ended). */
  async discard(): Promise<void> {
    this.sink = () => {};
    this.held = [];
    await this.until(() => this.complete);
  }

  private async until(done: () => boolean): Promise<void> {
    while (!done()) await new Promise<void>((resolve) => (this.wake = resolve));
  }
}
