import { errorMessage } from './errors';
import type { Logger } from './log';
import type { MemberInfo, Membership, Registration } from './membership';

/**
 * Keeps this process registered: when its lease is lost (paused past the TTL, cut off from etcd)
 * it registers again, which gives it a new token. Until then `token` is empty, so a worker stops
 * pushing rather than push under a lease that is gone.
 */
export class RegistrationKeeper {
  private registration: Registration | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly membership: Membership,
    private readonly info: MemberInfo,
    private readonly log: Logger,
    /** Called with each new token (and "" when the lease is lost). */
    private readonly onToken: (token: string) => void = () => {},
  ) {}

  get token(): string {
    return this.registration && !this.registration.isLost() ? this.registration.token : '';
  }

  async start(): Promise<void> {
    await this.register();
  }

  private async register(): Promise<void> {
    const registration = await this.membership.register(this.info);
    this.registration = registration;
    registration.once('lost', (err: unknown) => {
      this.log.warn(
        { err: errorMessage(err), token: registration.token },
        'membership lease lost; registering again',
      );
      this.onToken('');
      this.scheduleRetry(0);
    });
    this.log.info({ token: registration.token, key: registration.key }, 'registered');
    this.onToken(registration.token);
  }

  private scheduleRetry(delayMs: number): void {
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.register().catch((err: unknown) => {
        this.log.warn({ err: errorMessage(err) }, 'cannot register with etcd; retrying');
        this.scheduleRetry(Math.min(2_000, Math.max(200, delayMs * 2)));
      });
    }, delayMs);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.registration?.close().catch(() => undefined);
  }
}
