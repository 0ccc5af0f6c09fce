/**
 * A wake-up flag for one waiting caller: `signal()` (a pub/sub message) ends the current `wait`, or the
 * next one at once if it came while the caller was busy, so a message between a read and the wait is
 * never lost.
 */
export class CacheWakeup {
  private signalled = false;
  private resolve?: () => void;
  private timer?: NodeJS.Timeout;

  /** Marks a message as seen; wakes the caller if it is waiting. */
  signal(): void {
    this.signalled = true;
    this.finish();
  }

  /** Forgets earlier messages (call before re-reading). */
  reset(): void {
    this.signalled = false;
  }

  /** Resolves on the next signal (at once if one came since `reset`) or after `ms`. */
  wait(ms: number): Promise<void> {
    if (this.signalled) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.finish(), ms);
    });
  }

  private finish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const resolve = this.resolve;
    this.resolve = undefined;
    resolve?.();
  }
}
