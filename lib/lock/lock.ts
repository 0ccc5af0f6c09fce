import type { Logger } from '@nestjs/common';
import { LockLostError } from './lock.errors';
import { checkDuration, inputSite } from '../core/validation';
import { LockInputError } from './lock.errors';
import type { LockLostEvent } from '../core/events';

const EXTEND = inputSite('Lock.extend', LockInputError);

/** What a {@link Lock} needs from the service that made it (the library's own wiring). */
export interface LockBackend {
  readonly logger: Logger;
  extend(resource: string, token: string, ttlMs: number): Promise<boolean>;
  release(resource: string, token: string): Promise<boolean>;
  /** The lock is no longer held by this process, released or (with the reason) lost: stop tracking it. */
  forget(lock: Lock, lost?: LockLostReason): void;
}

/** Why a held lock was lost (see {@link LockLostEvent}). */
export type LockLostReason = LockLostEvent['reason'];

type LockState = 'held' | 'released' | 'lost';

/**
 * A held lock on one resource. Get one from {@link LockService.acquire}, `tryAcquire`, `withLock`
 * or, in a handler decorated with `@WithLock`, from `@CurrentLock()`.
 *
 * - `fence` strictly increases on every acquisition of the resource: pass it to the storage you
 *   protect and have it reject writes carrying a smaller fence than it has seen (the only way to be
 *   safe against a holder paused past its TTL).
 * - While held, the lock is renewed every `ttlMs / 3` (unless `autoExtend: false`). If a renewal
 *   finds it gone or taken, or it cannot be renewed before `expiresAt`, `signal` aborts with a
 *   {@link LockLostError} and a warning is logged; nothing is ever thrown from a timer.
 */
export class Lock {
  /** Made on first use of `signal` (most locks are never asked for it: an AbortController per lock costs). */
  private controller?: AbortController;
  private lostReason?: LockLostError;
  private state: LockState = 'held';
  private expires: number;
  private ttl: number;
  private renewTimer?: NodeJS.Timeout;
  private expiryTimer?: NodeJS.Timeout;
  private lastRenewalError?: unknown;
  /** When the renewal now waiting for Redis was sent (undefined when none is). */
  private renewalSentAt?: number;

  /** Locks are created by {@link LockService} (`acquire`, `tryAcquire`, `withLock`), not by applications. */
  constructor(
    private readonly backend: LockBackend,
    /** The locked resource, as given to `acquire`. */
    readonly resource: string,
    /** The holder's random token (144 bits, base64url): what release and extend check. */
    readonly token: string,
    /** Fencing token: strictly increases on every acquisition of this resource. */
    readonly fence: number,
    /** Client time (ms since epoch) just before the acquiring call was sent. */
    sentAt: number,
    ttlMs: number,
    private readonly autoExtend: boolean,
  ) {
    this.ttl = ttlMs;
    this.expires = sentAt + ttlMs;
    this.armExpiry();
    if (autoExtend) this.scheduleRenewal(this.renewalDelay());
  }

  /**
   * Aborted (with a {@link LockLostError} as `reason`) when the lock is lost while held: at the latest
   * at `expiresAt`, also when the process did not run then (paused, or a blocked event loop) — reading
   * `signal` or `held` after `expiresAt` finds it aborted.
   */
  get signal(): AbortSignal {
    this.checkExpiry();
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.lostReason) this.controller.abort(this.lostReason);
    }
    return this.controller.signal;
  }

  /**
   * Latest time (ms since epoch, client clock) the lock is known to last: the send time of the last
   * successful acquire or renewal plus its TTL. Conservative: Redis keeps it at least this long.
   */
  get expiresAt(): number {
    return this.expires;
  }

  /** The TTL the lock is renewed with, in ms. */
  get ttlMs(): number {
    return this.ttl;
  }

  /**
   * True until the lock is released or lost, and never after `expiresAt` (client clock), whatever the
   * timers did: a process paused past its lease learns it here.
   */
  get held(): boolean {
    this.checkExpiry();
    return this.state === 'held';
  }

  /**
   * For code about to act under the lock (a write): throws unless it is still held. Fencing (pass
   * `fence` to the storage) remains the real protection: the lock may be lost right after.
   * @throws LockLostError when the lock was lost, released, or its lease has run out.
   * @example
   * lock.assertHeld();
   * await orders.save(order, { fence: lock.fence });
   */
  assertHeld(): void {
    this.checkExpiry();
    if (this.state === 'held') return;
    throw this.lostReason ?? new LockLostError(this.resource, 'it was released');
  }

  /**
   * Sets the lock's TTL to `ttlMs` from now (default: its current TTL); later automatic renewals
   * use it too.
   * @throws LockLostError when the lock is no longer held (its `signal` is aborted too).
   * @throws LockInputError for a `ttlMs` that is not a positive integer.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call.
   * @example
   * await lock.extend(120_000); // a long step ahead
   */
  async extend(ttlMs: number = this.ttl): Promise<void> {
    checkDuration(ttlMs, 'ttlMs', EXTEND, false, undefined, 'argument');
    this.checkExpiry();
    if (this.state !== 'held') {
      throw new LockLostError(this.resource, `cannot extend a lock that was ${this.state}`);
    }
    const sentAt = Date.now();
    const ok = await this.backend.extend(this.resource, this.token, ttlMs);
    if (this.state !== 'held') {
      throw new LockLostError(this.resource, `cannot extend a lock that was ${this.state}`);
    }
    if (!ok) {
      const reason = this.lose('taken', 'it was deleted, expired or taken by another owner');
      throw reason;
    }
    this.ttl = ttlMs;
    this.renewed(sentAt);
  }

  /**
   * Releases the lock if this holder still has it (token checked in Redis) and wakes the waiters.
   * Stops the renewals first. Resolves `true` if it deleted the lock, `false` if it was no longer
   * held with this token (already released, expired, or taken). Calling it again resolves `false`.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call.
   * @example
   * const lock = await locks.acquire('job');
   * try { await run(lock); } finally { await lock.release(); }
   */
  async release(): Promise<boolean> {
    if (this.state === 'released') return false;
    this.state = 'released';
    this.stopTimers();
    this.backend.forget(this);
    return this.backend.release(this.resource, this.token);
  }

  /**
   * The lease was ended by other means (an idempotent run stored its result in the same step): stops
   * tracking and renewing it without a call to Redis.
   * @internal
   */
  settle(): void {
    if (this.state !== 'held') return;
    this.state = 'released';
    this.stopTimers();
    this.backend.forget(this);
  }

  /**
   * Stops renewing without releasing (the service is shutting down): the lock expires by its TTL.
   * @internal
   */
  abandon(why: string): void {
    this.lose('shutdown', why);
  }

  private renewalDelay(): number {
    return Math.max(1, Math.floor(this.ttl / 3));
  }

  private scheduleRenewal(delay: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(), delay);
    this.renewTimer.unref();
  }

  /** One watchdog round; never rejects. */
  private async renew(): Promise<void> {
    if (this.state !== 'held') return;
    const sentAt = Date.now();
    if (sentAt >= this.expires) return this.expire();
    let ok: boolean;
    this.renewalSentAt = sentAt;
    try {
      ok = await this.backend.extend(this.resource, this.token, this.ttl);
    } catch (err) {
      this.renewalSentAt = undefined;
      if (this.state !== 'held') return;
      // Redis unreachable or slow: try again soon; the expiry timer declares the lock lost if
      // no renewal succeeds before expiresAt.
      this.lastRenewalError = err;
      this.backend.logger.debug(`Lock on "${this.resource}": renewal failed: ${(err as Error).message}`);
      this.scheduleRenewal(Math.max(10, Math.floor(this.ttl / 10)));
      return;
    }
    this.renewalSentAt = undefined;
    if (this.state !== 'held') return;
    if (!ok) {
      this.lose('taken', 'renewal found it deleted, expired or taken by another owner');
      return;
    }
    this.renewed(sentAt);
    this.scheduleRenewal(this.renewalDelay());
  }

  private renewed(sentAt: number): void {
    this.lastRenewalError = undefined;
    this.expires = sentAt + this.ttl;
    this.armExpiry();
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => this.expire(), Math.max(0, this.expires - Date.now()));
    this.expiryTimer.unref();
  }

  /** Loses the lock if its lease has run out (the timers may not have run: a paused process). */
  private checkExpiry(): void {
    if (this.state === 'held' && Date.now() >= this.expires) this.expire();
  }

  /**
   * The lease ran out: says why. A renewal sent in time without an answer is Redis's fault; no
   * renewal sent in time is the process's (it did not run: paused, or its event loop blocked).
   */
  private expire(): void {
    const late = Date.now() - this.expires;
    if (!this.autoExtend) return void this.lose('expired', 'it expired (autoExtend is off)');
    if (this.lastRenewalError) {
      const why = `it could not be renewed before it expired (${(this.lastRenewalError as Error).message})`;
      return void this.lose('unrenewed', why, this.lastRenewalError);
    }
    if (this.renewalSentAt !== undefined && this.renewalSentAt < this.expires) {
      return void this.lose('unrenewed', 'it could not be renewed before it expired (Redis did not answer)');
    }
    const why = `its lease expired ${late} ms ago before a renewal was sent: the process did not run in time (paused, or its event loop blocked)`;
    this.lose('stalled', why);
  }

  private lose(code: LockLostReason, why: string, cause?: unknown): LockLostError {
    const reason = new LockLostError(this.resource, why, cause === undefined ? undefined : { cause });
    if (this.state !== 'held') return reason;
    this.state = 'lost';
    this.stopTimers();
    this.backend.forget(this, code);
    this.backend.logger.warn(reason.message);
    this.lostReason = reason;
    this.controller?.abort(reason);
    return reason;
  }

  private stopTimers(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
    this.renewTimer = undefined;
    this.expiryTimer = undefined;
  }
}
