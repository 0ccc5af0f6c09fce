import type { Logger } from '@nestjs/common';
import type { RedisLuaSubscriber } from '../module/redis-subscriber';

/** One `acquire` call waiting for a resource. @internal */
export class LockWaiter {
  /** A release notice arrived since the waiter's last attempt began. */
  notified = false;
  private wake?: () => void;

  /** @param ticket a fair waiter's place in its resource's queue: a notice naming it wakes this waiter. */
  constructor(readonly ticket?: string) {}

  /** Resolves after `ms`, on a release notice, or when `signal` aborts, whichever comes first. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (this.notified || signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Starts an attempt: whether it is made on a notice (one that came since the last attempt began). */
  takeNotice(): boolean {
    const notified = this.notified;
    this.notified = false;
    return notified;
  }

  notify(): void {
    this.notified = true;
    this.wake?.();
  }
}

/**
 * When to retry if no notice comes (its holder died): once its remaining `pttl` ms have run out, plus
 * jitter, so that waiters of several processes do not all retry in the same millisecond (Infinity for
 * a lease without an expiry, `pttl` < 0).
 */
export function retryAfterExpiry(pttl: number): number {
  return pttl >= 0 ? pttl + 1 + Math.random() * Math.min(50, pttl / 10 + 1) : Infinity;
}

/** The notice of a release when no fair waiter queues (otherwise the notice is the queue head's ticket). */
const RELEASED = 'released';

/**
 * The waiters of one resource in this process, subscribed once to its release channel.
 * A notice wakes one waiter (the oldest not yet woken), not all of them: the others would only find
 * the lock taken again. A notice naming a fair waiter's ticket wakes that waiter if it waits here,
 * otherwise the oldest waiter that does not queue (it is not its turn for the others). A woken
 * waiter that leaves without trying passes the notice on.
 * @internal
 */
class WaitQueue {
  readonly waiters: LockWaiter[] = [];
  unsubscribe?: () => void;
  ready!: Promise<void>;

  notice(message: string = RELEASED): void {
    if (message === RELEASED) {
      this.waiters.find((w) => !w.notified)?.notify();
      return;
    }
    (this.waiters.find((w) => w.ticket === message) ?? this.waiters.find((w) => !w.notified && w.ticket === undefined))?.notify();
  }
}

/** Per-resource wait queues over the shared subscriber connection. @internal */
export class LockWaitQueues {
  private readonly queues = new Map<string, WaitQueue>();

  constructor(
    private readonly subscriber: RedisLuaSubscriber,
    private readonly logger: Logger,
  ) {}

  /**
   * Adds a waiter for `channel` (with its fair queue `ticket`, if it queues); resolves once the channel is subscribed (or the subscription failed:
   * the waiter then relies on the holder's TTL alone).
   */
  async join(channel: string, ticket?: string): Promise<LockWaiter> {
    let queue = this.queues.get(channel);
    if (!queue) {
      const created = new WaitQueue();
      created.ready = this.subscriber
        .subscribe(channel, (message) => created.notice(message))
        .then(
          (unsubscribe) => {
            created.unsubscribe = unsubscribe;
            if (this.queues.get(channel) !== created) unsubscribe();
          },
          (err: Error) => this.logger.warn(`cannot subscribe to lock release notices on ${channel}: ${err.message}`),
        );
      this.queues.set(channel, created);
      queue = created;
    }
    const waiter = new LockWaiter(ticket);
    queue.waiters.push(waiter);
    await queue.ready;
    return waiter;
  }

  /**
   * Removes a waiter; passes on a notice it did not act on (or, with `passOn`, the notice it acted on:
   * a shared lease or a stored result serves the next waiter too); unsubscribes after the last one.
   */
  leave(channel: string, waiter: LockWaiter, acquired: boolean, passOn = false): void {
    const queue = this.queues.get(channel);
    if (!queue) return;
    const i = queue.waiters.indexOf(waiter);
    if (i >= 0) queue.waiters.splice(i, 1);
    if (passOn || (waiter.notified && !acquired)) queue.notice();
    if (queue.waiters.length > 0) return;
    this.queues.delete(channel);
    queue.unsubscribe?.();
  }
}
