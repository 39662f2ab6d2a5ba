import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { MemberInfo } from './membership';
import type { EtcdSecurity } from './etcd-client';

/** What the registration thread is started with. */
export interface RegistrationThreadData {
  endpoints: string[];
  security?: EtcdSecurity;
  cluster: string;
  ttlSeconds: number;
  info: MemberInfo;
  /** The role's logger name and bindings: the thread logs as the role does, to the same stderr. */
  logName: string;
  logBindings: Record<string, string | number>;
  /** A SharedArrayBuffer of one BigInt64: the current lease id, 0 while there is none. */
  token: SharedArrayBuffer;
}

export type ThreadedRegistrationOptions = Omit<RegistrationThreadData, 'token'>;

type ThreadMessage = { type: 'ready' } | { type: 'closed' } | { type: 'error'; message: string };

/**
 * A role's membership registration, kept alive from a thread of its own: a main thread busy with
 * model-sized work (Adam over a large slice, a checkpoint, a gradient) for longer than the TTL
 * would otherwise miss its keep-alives, lose its lease, and be fenced as if it had died. A process
 * that is really gone, or stopped (SIGSTOP stops every thread), still loses it. `token` reads the
 * current lease id from shared memory, so it is right even the moment a blocked thread resumes.
 */
export class ThreadedRegistration {
  private readonly tokens = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly thread: Worker;
  private readonly messages: ThreadMessage[] = [];
  private readonly waiting: Array<() => void> = [];
  private closing: Promise<void> | undefined;

  constructor(options: ThreadedRegistrationOptions) {
    const workerData: RegistrationThreadData = {
      ...options,
      token: this.tokens.buffer as SharedArrayBuffer,
    };
    this.thread = new Worker(path.join(__dirname, 'registration-thread-main.js'), { workerData });
    const tell = (m: ThreadMessage): void => {
      this.messages.push(m);
      for (const wake of this.waiting.splice(0)) wake();
    };
    this.thread.on('message', tell);
    this.thread.on('error', (err) => tell({ type: 'error', message: err.message }));
    // A thread that ended holds no lease: no token, rather than a stale one; and no waiter is
    // left waiting for an answer it will never send.
    this.thread.on('exit', (code) => {
      Atomics.store(this.tokens, 0, 0n);
      tell({ type: 'error', message: `the registration thread exited (${code})` });
    });
    // The thread must not keep a process alive that is otherwise done.
    this.thread.unref();
  }

  /** The current lease id ("" while the lease is lost and not yet registered again). */
  get token(): string {
    const id = Atomics.load(this.tokens, 0);
    return id === 0n ? '' : id.toString();
  }

  /** Resolves once registered; rejects with the first registration's error. */
  async start(): Promise<void> {
    const m = await this.next('ready');
    if (m.type === 'error') throw new Error(m.message);
  }

  /** Revokes the lease (the member leaves at once) and ends the thread. Once, however often called. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.thread.postMessage('close');
      let timer: NodeJS.Timeout | undefined;
      // A thread stuck on an unreachable etcd is ended anyway; its lease then runs out.
      await Promise.race([this.next('closed'), new Promise((r) => (timer = setTimeout(r, 3_000)))]);
      clearTimeout(timer);
      await this.thread.terminate();
    })();
    return this.closing;
  }

  private async next(type: 'ready' | 'closed'): Promise<ThreadMessage> {
    for (;;) {
      const found = this.messages.find((m) => m.type === type || m.type === 'error');
      if (found) {
        this.messages.splice(this.messages.indexOf(found), 1);
        return found;
      }
      // Awaited, the thread's answer must keep the process up; otherwise it must not.
      this.thread.ref();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      this.thread.unref();
    }
  }
}
