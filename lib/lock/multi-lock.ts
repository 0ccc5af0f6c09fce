import type { Lock } from './lock';

/**
 * Locks on several resources held together: what {@link LockService.acquireAll} and `withLocks`
 * give, and `@CurrentLocks()` in a handler decorated with `@WithLock([...])`. Each lock is a
 * {@link Lock} of its own (fenced, renewed while held); this handle releases and extends them
 * together, and its `signal` aborts when any of them is lost.
 */
export class MultiLock {
  private controller?: AbortController;

  /** Made by {@link LockService.acquireAll}, not by applications. */
  constructor(
    /** The locks, in the order they were taken (the global order of their resources). */
    readonly locks: readonly Lock[],
  ) {}

  /** The locked resources, in the order they were taken. */
  get resources(): string[] {
    return this.locks.map((lock) => lock.resource);
  }

  /** The resources for messages: `a, b`. */
  get resource(): string {
    return this.resources.join(', ');
  }

  /** The fencing token of each lock, in the order of {@link locks}. */
  get fences(): number[] {
    return this.locks.map((lock) => lock.fence);
  }

  /** True while every lock is held. */
  get held(): boolean {
    return this.locks.every((lock) => lock.held);
  }

  /** When the first of the locks runs out unless renewed (ms since epoch). */
  get expiresAt(): number {
    return Math.min(...this.locks.map((lock) => lock.expiresAt));
  }

  /** Aborted, with that lock's {@link LockLostError} as `reason`, when any of the locks is lost. */
  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      for (const lock of this.locks) {
        const signal = lock.signal;
        if (signal.aborted) {
          controller.abort(signal.reason);
          break;
        }
        signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
      }
    }
    return this.controller.signal;
  }

  /**
   * Sets every lock's TTL to `ttlMs` (default: each lock's current TTL), as {@link Lock.extend}.
   * @throws LockLostError when one of the locks is no longer held (the others are extended).
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call.
   * @example `await transfer.extend(60_000)`
   */
  async extend(ttlMs?: number): Promise<void> {
    await settleAll(this.locks.map((lock) => lock.extend(ttlMs)));
  }

  /**
   * Releases every lock (each token checked in Redis) and wakes their waiters. Resolves `true` if
   * every lock was still held; each lock is released even when another's release fails.
   * @throws RedisLuaUnavailableError when a release could not be sent (that lock expires by its TTL).
   * @example
   * const both = await locks.acquireAll([`acct:${from}`, `acct:${to}`]);
   * try { await ledger.transfer(from, to, amount); } finally { await both.release(); }
   */
  async release(): Promise<boolean> {
    const released = await settleAll(this.locks.map((lock) => lock.release()));
    return released.every(Boolean);
  }
}

/** Waits for every promise; rejects with the first rejection once all have settled. */
async function settleAll<T>(promises: Array<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}
