/** What a session stream needs to be tracked: its events, and ending it. */
interface SessionStream {
  on(event: 'end' | 'cancelled' | 'error', listener: () => void): unknown;
  end(): unknown;
}

/**
 * The open session streams of one kind: a session lasts as long as its worker, so when the
 * shard closes (or the worker ends its side) each is ended once the requests it has in hand are
 * answered.
 */
export class SessionStreams<C extends SessionStream> {
  private readonly open = new Map<C, () => void>();

  /** Tracks `call`; `inHand()` resolves once the requests it has taken are answered. */
  add(call: C, inHand: () => Promise<void>): void {
    const endSession = (): void => {
      this.open.delete(call);
      void inHand().then(() => call.end());
    };
    this.open.set(call, endSession);
    call.on('end', endSession);
    call.on('cancelled', () => this.open.delete(call));
    call.on('error', () => this.open.delete(call));
  }

  /** Whether `call` still takes new requests. */
  has(call: C): boolean {
    return this.open.has(call);
  }

  endAll(): void {
    for (const endSession of this.open.values()) endSession();
  }
}
