import type { Logger } from '@nestjs/common';
import { RedisLuaUnavailableError } from '../core/errors';
import type { LeaseKind, LockAcquireEvent } from '../core/events';
import type { Telemetry } from '../core/telemetry';
import type { RedisLuaSubscriber } from '../module/redis-subscriber';
import { Lock, type LockBackend, type LockLostReason } from './lock';
import { LockTimeoutError } from './lock.errors';
import type { MultiLock } from './multi-lock';
import { FAIR_HEARTBEAT_MS, type AcquireReply, type WaiterCount } from './lock-store';
import { LockTokens } from './lock-tokens';
import { LockWaitQueues, retryAfterExpiry } from './lock-waiters';
import { eitherSignal, withUnlimitedListeners } from './lock-signals';

/**
 * The Redis side of one kind of lease (a lock, a semaphore permit): its scripts and keys, one hash
 * tag per name. `attempt` follows the waiter-count protocol of {@link WaiterCount}.
 */
export interface LeaseStore {
  /** `[1, fence]` when the lease was taken with `token`, `[0, ms until a holder expires]` otherwise. */
  attempt(
    name: string,
    token: string,
    ttlMs: number,
    count: WaiterCount | undefined,
    permits: number,
    replicas: ReplicaRequirement | undefined,
  ): Promise<AcquireReply>;
  /** Ends the lease held with `token` and notifies waiters (1: it was held). */
  release(name: string, token: string): Promise<0 | 1>;
  /** Sets the lease's TTL if it is held with `token` (1: renewed). */
  extend(name: string, token: string, ttlMs: number): Promise<0 | 1>;
  /** After a failed call that may have taken or kept a lease: gives it back by token. Never throws. */
  handBack(err: unknown, name: string, token: string, why: string): void;
  /** Uncounts a waiter that gave up (and takes its ticket out of a fair queue). Never rejects. */
  unwait(name: string, ticket: string): void;
  /** The pub/sub channel on which the name's releases are announced. */
  channel(name: string): string;
}

/** A lease that counts only once this many replicas acknowledged it (`replicas`, `replicaTimeoutMs`). */
export interface ReplicaRequirement {
  readonly count: number;
  readonly timeoutMs: number;
}

/** One lease request, checked by the service that makes it. */
export interface LeaseRequest {
  readonly name: string;
  readonly ttlMs: number;
  readonly autoExtend: boolean;
  /** How many holders the name admits at once (1 for a lock). */
  readonly permits: number;
  /** Replicas that must acknowledge the acquisition before it counts. */
  readonly replicas?: ReplicaRequirement;
}

/** How a {@link Leases} names, refuses and shares its leases. */
export interface LeasesConfig {
  /** The error of a request still refused after `waitMs` (`retryAfterMs`: a holder's remaining TTL). */
  readonly timeout: (request: LeaseRequest, waitMs: number, retryAfterMs: number | undefined) => Error;
  /** How messages name a lease: `Lock`, `Semaphore`. */
  readonly noun: string;
  /** What events and metrics call it. */
  readonly kind: LeaseKind;
  /**
   * Leases one holder's acquisition does not exclude (read locks): a waiter woken by a release
   * notice that takes its lease passes the notice on to the next waiter of this process.
   */
  readonly shared?: boolean;
  /**
   * Waiters queue in arrival order (fair locks): each waits with a ticket that release notices name,
   * and attempts at least every {@link FAIR_HEARTBEAT_MS}, which keeps its place in the queue alive.
   */
  readonly fair?: boolean;
}

/** Result of one attempt: a lease, or the ms until a holder expires. */
type Attempt = { lock: Lock; pttl?: undefined } | { lock?: undefined; pttl: number };

/**
 * Taking, waiting for, renewing and giving back leases of one store, for `LockService` and
 * `SemaphoreService`: random tokens, the watchdog of each held {@link Lock}, event-driven waiting (a
 * release anywhere wakes a waiter at once; a vanished holder is retried when its TTL runs out), and
 * shutdown.
 */
export class Leases {
  /** Every lease held by this process, with when it was taken (`performance.now()`). */
  private readonly held = new Map<Lock, number>();
  private readonly tokens = new LockTokens();
  private readonly waiters: LockWaitQueues;
  /** Aborted on shutdown; every waiter listens to it, so it may have any number of listeners. */
  private readonly closing = withUnlimitedListeners(new AbortController());
  private readonly backend: LockBackend;
  /** Set when telemetry records events. */
  private readonly telemetry: Telemetry | undefined;

  constructor(
    private readonly store: LeaseStore,
    subscriber: RedisLuaSubscriber,
    private readonly log: Logger,
    private readonly config: LeasesConfig,
    /** Reports acquisitions, holds and losses (when telemetry records events). */
    telemetry: Telemetry | undefined,
  ) {
    this.waiters = new LockWaitQueues(subscriber, log);
    this.telemetry = telemetry?.recording ? telemetry : undefined;
    this.backend = {
      logger: log,
      extend: (name, token, ttlMs) => this.extend(name, token, ttlMs),
      release: (name, token) => this.release(name, token),
      forget: (lock, lost) => this.forget(lock, lost),
    };
  }

  /**
   * Takes a lease, waiting up to `waitMs`; rejects with the timeout error, the signal's reason or a
   * Redis error. Reported as a `lock.acquire` event.
   */
  async acquire(request: LeaseRequest, waitMs: number, caller: AbortSignal | undefined): Promise<Lock> {
    if (!this.telemetry) return this.take(request, waitMs, caller);
    return this.reported(request, caller, () => this.take(request, waitMs, caller));
  }

  /** One attempt: the lease, or null. Reported as a `lock.acquire` event (`busy` for null). */
  async tryAcquire(request: LeaseRequest): Promise<Lock | null> {
    if (!this.telemetry) return (await this.attempt(request)).lock ?? null;
    return this.reported(request, undefined, async () => (await this.attempt(request)).lock ?? null);
  }

  /** An acquisition, reported with its outcome and duration. */
  private async reported<T extends Lock | null>(
    request: LeaseRequest,
    caller: AbortSignal | undefined,
    take: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    try {
      const lock = await take();
      this.reportAcquire(request, started, lock ? 'acquired' : 'busy');
      return lock;
    } catch (err) {
      this.reportAcquire(request, started, this.failureOf(err, caller));
      throw err;
    }
  }

  private reportAcquire(request: LeaseRequest, started: number, outcome: LockAcquireEvent['outcome']): void {
    const durationMs = performance.now() - started;
    this.telemetry?.emit({ type: 'lock.acquire', kind: this.config.kind, outcome, durationMs, resource: request.name });
  }

  /** The outcome of a failed acquisition. */
  private failureOf(err: unknown, caller: AbortSignal | undefined): LockAcquireEvent['outcome'] {
    if (err instanceof LockTimeoutError) return 'timeout';
    if (caller?.aborted || this.closing.signal.aborted) return 'aborted';
    return err instanceof RedisLuaUnavailableError ? 'unavailable' : 'error';
  }

  /** A lease is no longer held (released, or lost for `lost`): stops tracking it, reports how long it was held. */
  private forget(lock: Lock, lost: LockLostReason | undefined): void {
    const since = this.held.get(lock);
    if (since === undefined) return;
    this.held.delete(lock);
    const { telemetry } = this;
    if (!telemetry) return;
    const { kind } = this.config;
    const resource = lock.resource;
    if (lost) telemetry.emit({ type: 'lock.lost', kind, reason: lost, resource });
    telemetry.emit({ type: 'lock.held', kind, end: lost ? 'lost' : 'released', durationMs: performance.now() - since, resource });
  }

  /** {@link acquire}, unreported. */
  private async take(request: LeaseRequest, waitMs: number, caller: AbortSignal | undefined): Promise<Lock> {
    this.closing.signal.throwIfAborted();
    caller?.throwIfAborted();
    const deadline = performance.now() + waitMs;
    // The first attempt costs what tryAcquire does: no combined signal, subscription or timer until
    // the lease turns out to be taken.
    const first = await this.attempt(request, caller);
    if (first.lock) return first.lock;
    if (waitMs === 0) throw this.config.timeout(request, waitMs, first.pttl >= 0 ? first.pttl : undefined);
    const { signal, dispose } = eitherSignal(caller, this.closing.signal);
    try {
      return await this.waitFor(request, waitMs, signal, deadline);
    } finally {
      dispose();
    }
  }

  /** Runs `fn` holding `lock` and releases it in every outcome (a failing release is logged, never hides `fn`'s outcome). */
  async run<L extends Lock | MultiLock, T>(lock: L, fn: (lock: L) => T | Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await fn(lock);
    } catch (err) {
      await this.releaseQuietly(lock);
      throw err;
    }
    await this.releaseQuietly(lock);
    return result;
  }

  /** Releases by token; a call that lost its reply is sent once more in the background. */
  async release(name: string, token: string): Promise<boolean> {
    try {
      return (await this.store.release(name, token)) === 1;
    } catch (err) {
      this.store.handBack(err, name, token, 'its release reply was lost');
      throw err;
    }
  }

  async extend(name: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.store.extend(name, token, ttlMs)) === 1;
  }

  /** Stops waiting requests and the renewal of held leases (they expire by their TTL; their `signal` aborts). */
  close(why: string): void {
    this.closing.abort(new Error(why));
    for (const lock of [...this.held.keys()]) lock.abandon('the application is shutting down; it is no longer renewed');
  }

  /** After a first attempt failed: waits for a release notice or a holder's TTL, until `deadline`. */
  private async waitFor(request: LeaseRequest, waitMs: number, signal: AbortSignal, deadline: number): Promise<Lock> {
    // Subscribe, then try again: a release between the first attempt and the subscription is
    // caught by the second attempt, any later one by the notice. The second attempt, if it fails,
    // also counts this waiter in the same script call, so every later release publishes a notice
    // (releases publish nothing while no waiter is counted: see WaiterCount).
    const { name } = request;
    const channel = this.store.channel(name);
    const ticket = this.config.fair ? this.tokens.next() : undefined;
    const count: WaiterCount = { counted: false, deadline, ticket: ticket ?? '' };
    const waiter = await this.waiters.join(channel, ticket);
    let acquired = false;
    /** The last attempt was made on a release notice. */
    let woken = false;
    try {
      for (;;) {
        signal.throwIfAborted();
        woken = waiter.takeNotice();
        const attempt = await this.attempt(request, signal, count);
        if (attempt.lock) {
          acquired = true;
          return attempt.lock;
        }
        const remaining = deadline - performance.now();
        if (remaining <= 0) throw this.config.timeout(request, waitMs, attempt.pttl >= 0 ? attempt.pttl : undefined);
        if (waiter.notified) continue;
        // No notice comes if the holder dies: retry when its TTL runs out.
        const heartbeat = this.config.fair ? FAIR_HEARTBEAT_MS : Infinity;
        await waiter.wait(Math.ceil(Math.min(retryAfterExpiry(attempt.pttl), remaining, heartbeat)), signal);
      }
    } finally {
      // A shared lease taken on a notice passes the notice on: the next waiter may take one too.
      this.waiters.leave(channel, waiter, acquired, acquired && woken && this.config.shared === true);
      if (count.counted) this.store.unwait(name, count.ticket);
    }
  }

  /**
   * One attempt: the lease, or the ms until a holder expires. A lease taken after shutdown began or
   * `signal` aborted (while the call was in flight) is handed back.
   */
  private async attempt(request: LeaseRequest, signal?: AbortSignal, count?: WaiterCount): Promise<Attempt> {
    const { name, ttlMs, autoExtend, permits, replicas } = request;
    const token = this.tokens.next();
    const sentAt = Date.now();
    let reply: AcquireReply;
    try {
      reply = await this.store.attempt(name, token, ttlMs, count, permits, replicas);
    } catch (err) {
      this.store.handBack(err, name, token, 'its acquire reply was lost');
      throw err;
    }
    if (count) count.counted = reply[0] !== 1;
    if (reply[0] !== 1) return { pttl: Number(reply[1]) };
    const lock = new Lock(this.backend, name, token, Number(reply[1]), sentAt, ttlMs, autoExtend);
    if (this.closing.signal.aborted || signal?.aborted) {
      // Given up (shutdown, client gone) while the attempt was in flight: hand the lease back.
      await this.releaseQuietly(lock);
      this.closing.signal.throwIfAborted();
      signal?.throwIfAborted();
    }
    this.held.set(lock, performance.now());
    return { lock };
  }

  /** Releases `locks` (taken together, now given up) in every outcome; failures are logged. */
  async releaseAll(locks: readonly Lock[]): Promise<void> {
    await Promise.all(locks.map((lock) => this.releaseQuietly(lock)));
  }

  private async releaseQuietly(lock: Lock | MultiLock): Promise<void> {
    try {
      await lock.release();
    } catch (err) {
      this.log.warn(`${this.config.noun} on "${lock.resource}": release failed, it expires by its TTL: ${(err as Error).message}`);
    }
  }
}
