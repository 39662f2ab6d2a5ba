/**
 * Many readers at once or one writer, in arrival order: a waiting writer holds back the readers
 * that come after it, so a stream of readers cannot starve it.
 */
export class ReadWriteLock {
  private readers = 0;
  private writing = false;
  private readonly waiting: Array<{ write: boolean; start: () => void }> = [];

  read<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.run(false, fn);
  }

  write<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.run(true, fn);
  }

  /** Whether a reader or writer holds the lock now (a writer arriving would wait). */
  get busy(): boolean {
    return this.writing || this.readers > 0;
  }

  private async run<T>(write: boolean, fn: () => T | Promise<T>): Promise<T> {
    if (this.waiting.length > 0 || !this.admits(write)) {
      await new Promise<void>((start) => this.waiting.push({ write, start }));
    } else {
      this.enter(write);
    }
    try {
      return await fn();
    } finally {
      if (write) this.writing = false;
      else this.readers -= 1;
      this.wake();
    }
  }

  private admits(write: boolean): boolean {
    return write ? !this.busy : !this.writing;
  }

  private enter(write: boolean): void {
    if (write) this.writing = true;
    else this.readers += 1;
  }

  private wake(): void {
    while (this.waiting.length > 0 && this.admits(this.waiting[0].write)) {
      const next = this.waiting.shift()!;
      this.enter(next.write);
      next.start();
    }
  }
}
