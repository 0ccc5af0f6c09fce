import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { checkDuration, checkText, inputSite, type InputSite } from '../core/validation';
import { REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import { RedisLuaSubscriber } from '../module/redis-subscriber';
import type { KeyBuilder } from '../scripts/key-builder';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { Lock, type LockBackend } from './lock';
import { LockInputError, LockTimeoutError } from './lock.errors';
import {
  DEFAULT_LOCK_TTL_MS,
  DEFAULT_LOCK_WAIT_MS,
  LOCK_TOKEN,
  LOCK_OPTION_KEYS,
  validateLockOptions,
  type AcquireLockOptions,
  type LockModuleOptions,
  type TryAcquireLockOptions,
} from './lock.options';
import { LockStore, type AcquireReply, type WaiterCount } from './lock-store';
import { LockTokens } from './lock-tokens';
import { LockWaitQueues } from './lock-waiters';
import { eitherSignal, withUnlimitedListeners } from './lock-signals';

const site = (method: string): InputSite => inputSite(`LockService.${method}`, LockInputError);
const ACQUIRE = site('acquire');
const TRY_ACQUIRE = site('tryAcquire');
const RELEASE = site('release');
const EXTEND = site('extend');

/** Result of one attempt: a lock, or the holder's PTTL. */
type Attempt = { lock: Lock; pttl?: undefined } | { lock?: undefined; pttl: number };

/**
 * Distributed locks on named resources: owner-checked (random token), auto-renewed while held,
 * fenced (a strictly increasing number per acquisition), and waking waiters on release through one
 * shared pub/sub connection instead of polling.
 *
 * ```ts
 * const total = await locks.withLock(`invoice:${id}`, async (lock) => {
 *   await ledger.write(entry, { fence: lock.fence, signal: lock.signal });
 * });
 * ```
 */
@Injectable()
export class LockService implements OnModuleDestroy {
  private readonly log = new Logger('RedisLua');
  private readonly store: LockStore;
  private readonly held = new Set<Lock>();
  private readonly tokens = new LockTokens();
  private readonly waiters: LockWaitQueues;
  /** Aborted on shutdown; every waiter listens to it, so it may have any number of listeners. */
  private readonly closing = withUnlimitedListeners(new AbortController());
  private readonly backend: LockBackend;
  /** The module-level defaults (`forRoot({ lock })` over the built-in ones). */
  readonly defaults: Readonly<Required<LockModuleOptions>>;

  constructor(
    engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) keys: KeyBuilder,
    @Inject(REDIS_LUA_OPTIONS) options: RedisLuaModuleOptions,
    subscriber: RedisLuaSubscriber,
  ) {
    // options.lock was validated with the connection options, before the connection opened.
    this.defaults = Object.freeze({
      ttlMs: options.lock?.ttlMs ?? DEFAULT_LOCK_TTL_MS,
      waitMs: options.lock?.waitMs ?? DEFAULT_LOCK_WAIT_MS,
    });
    this.store = new LockStore(engine, keys, this.log);
    this.waiters = new LockWaitQueues(subscriber, this.log);
    this.backend = {
      logger: this.log,
      extend: (resource, token, ttlMs) => this.extend(resource, token, ttlMs),
      release: (resource, token) => this.release(resource, token),
      forget: (lock) => this.held.delete(lock),
    };
  }

  /**
   * Takes the lock on `resource`, waiting up to `waitMs` while another owner holds it. Waiting is
   * event-driven: a release anywhere wakes a waiter at once; a lock whose holder vanished is retried
   * when its TTL runs out.
   * @throws LockTimeoutError when the lock is still held after `waitMs` (0: one attempt).
   * @throws LockInputError on an empty resource or invalid options, before any Redis call.
   * @throws the `signal`'s reason when it aborts while waiting.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const lock = await locks.acquire(`invoice:${id}`, { ttlMs: 10_000, waitMs: 2_000 });
   * try {
   *   await invoices.close(id, { fence: lock.fence });
   * } finally {
   *   await lock.release();
   * }
   */
  async acquire(resource: string, options: AcquireLockOptions = {}): Promise<Lock> {
    checkText(resource, 'resource', ACQUIRE);
    validateLockOptions(options, ACQUIRE, LOCK_OPTION_KEYS.acquire);
    const ttlMs = options.ttlMs ?? this.defaults.ttlMs;
    const waitMs = options.waitMs ?? this.defaults.waitMs;
    const autoExtend = options.autoExtend ?? true;
    const caller = options.signal;
    this.closing.signal.throwIfAborted();
    caller?.throwIfAborted();
    const deadline = performance.now() + waitMs;
    // The first attempt costs what tryAcquire does: no combined signal, subscription or timer until
    // the lock turns out to be held.
    const first = await this.attempt(resource, ttlMs, autoExtend, caller);
    if (first.lock) return first.lock;
    if (waitMs === 0) throw new LockTimeoutError(resource, waitMs, first.pttl >= 0 ? first.pttl : undefined);
    const { signal, dispose } = eitherSignal(caller, this.closing.signal);
    try {
      return await this.waitFor(resource, ttlMs, waitMs, autoExtend, signal, deadline);
    } finally {
      dispose();
    }
  }

  /** After a first attempt found the lock held: waits for a release notice or the holder's TTL, until `deadline`. */
  private async waitFor(
    resource: string,
    ttlMs: number,
    waitMs: number,
    autoExtend: boolean,
    signal: AbortSignal,
    deadline: number,
  ): Promise<Lock> {
    // Subscribe, then try again: a release between the first attempt and the subscription is
    // caught by the second attempt, any later one by the notice. The second attempt, if it fails,
    // also counts this waiter in the same script call, so every later release publishes a notice
    // (releases publish nothing while no waiter is counted: see WaiterCount).
    const channel = this.channel(resource);
    const waiter = await this.waiters.join(channel);
    const count: WaiterCount = { counted: false, deadline };
    let acquired = false;
    try {
      for (;;) {
        signal.throwIfAborted();
        waiter.notified = false;
        const attempt = await this.attempt(resource, ttlMs, autoExtend, signal, count);
        if (attempt.lock) {
          acquired = true;
          return attempt.lock;
        }
        const remaining = deadline - performance.now();
        if (remaining <= 0) throw new LockTimeoutError(resource, waitMs, attempt.pttl >= 0 ? attempt.pttl : undefined);
        if (waiter.notified) continue;
        // No notice comes if the holder dies: retry when its TTL runs out (plus jitter, so that
        // waiters of several processes do not all retry in the same millisecond).
        const byTtl = attempt.pttl >= 0 ? attempt.pttl + 1 + Math.random() * Math.min(50, attempt.pttl / 10 + 1) : Infinity;
        await waiter.wait(Math.ceil(Math.min(byTtl, remaining)), signal);
      }
    } finally {
      this.waiters.leave(channel, waiter, acquired);
      if (count.counted) this.store.unwait(resource);
    }
  }

  /**
   * One attempt: the lock, or `null` if another owner holds it.
   * @throws LockInputError on an empty resource or invalid options, before any Redis call.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const lock = await locks.tryAcquire('nightly-report');
   * if (!lock) return; // another instance runs it
   */
  async tryAcquire(resource: string, options: TryAcquireLockOptions = {}): Promise<Lock | null> {
    checkText(resource, 'resource', TRY_ACQUIRE);
    validateLockOptions(options, TRY_ACQUIRE, LOCK_OPTION_KEYS.tryAcquire);
    const attempt = await this.attempt(resource, options.ttlMs ?? this.defaults.ttlMs, options.autoExtend ?? true);
    return attempt.lock ?? null;
  }

  /**
   * Runs `fn` holding the lock on `resource` and releases it in every outcome. `fn` receives the
   * {@link Lock} (its `fence`, and `signal`, aborted if the lock is lost). An error of `fn` is
   * rethrown unchanged, never hidden by a failing release; a release that fails after `fn`
   * succeeded is logged (the lock then expires by its TTL) and `fn`'s result is returned.
   * @throws what {@link acquire} throws, before `fn` runs; `fn`'s own error, unchanged.
   * @example
   * const total = await locks.withLock(`cart:${id}`, (lock) => carts.checkout(id, lock.fence), { waitMs: 1_000 });
   */
  async withLock<T>(resource: string, fn: (lock: Lock) => T | Promise<T>, options: AcquireLockOptions = {}): Promise<T> {
    const lock = await this.acquire(resource, options);
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

  /**
   * Releases the lock on `resource` if it is held with `token` (e.g. a token handed to another
   * process) and wakes the waiters. Resolves `true` if it deleted the lock; a wrong token deletes nothing.
   * When the call fails without a reply (the connection dropped), it rejects with that error and the
   * release is sent once more in the background (compare-and-delete: harmless if the first one ran).
   * @throws LockInputError on an empty resource or token, before any Redis call.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example `await locks.release('invoice:42', tokenFromAnotherProcess)`
   */
  async release(resource: string, token: string): Promise<boolean> {
    checkText(resource, 'resource', RELEASE);
    checkText(token, 'token', RELEASE, LOCK_TOKEN);
    try {
      return (await this.store.release(resource, token)) === 1;
    } catch (err) {
      this.store.handBack(err, resource, token, 'its release reply was lost');
      throw err;
    }
  }

  /**
   * Sets the TTL of the lock on `resource` to `ttlMs` if it is held with `token`.
   * @throws LockInputError on an empty resource or token or a bad `ttlMs`, before any Redis call.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example `await locks.extend('invoice:42', token, 60_000)`
   */
  async extend(resource: string, token: string, ttlMs: number): Promise<boolean> {
    checkText(resource, 'resource', EXTEND);
    checkText(token, 'token', EXTEND, LOCK_TOKEN);
    checkDuration(ttlMs, 'ttlMs', EXTEND, false, undefined, 'argument');
    return (await this.store.extend(resource, token, ttlMs)) === 1;
  }

  /** Redis key holding the lock of `resource` (its value is the holder's token). */
  lockKey(resource: string): string {
    return this.store.lockKey(resource);
  }

  /** Pub/sub channel on which releases of `resource` are announced. */
  channel(resource: string): string {
    return this.store.channel(resource);
  }

  /**
   * Stops waiting acquisitions and the renewal of held locks (they expire by their TTL; their
   * `signal` aborts). Runs while Redis is still connected, before the module closes it.
   */
  onModuleDestroy(): void {
    this.closing.abort(new Error('nest-redis-lua: LockService is shutting down'));
    for (const lock of [...this.held]) lock.abandon('the application is shutting down; it is no longer renewed');
  }

  /**
   * One attempt (see {@link LockStore.attempt}): the lock, or the holder's PTTL. A lock taken after
   * the service began shutting down or `signal` aborted (while the call was in flight) is handed back.
   */
  private async attempt(resource: string, ttlMs: number, autoExtend: boolean, signal?: AbortSignal, count?: WaiterCount): Promise<Attempt> {
    const token = this.tokens.next();
    const sentAt = Date.now();
    let reply: AcquireReply;
    try {
      reply = await this.store.attempt(resource, token, ttlMs, count);
    } catch (err) {
      this.store.handBack(err, resource, token, 'its acquire reply was lost');
      throw err;
    }
    if (count) count.counted = reply[0] !== 1;
    if (reply[0] !== 1) return { pttl: Number(reply[1]) };
    const lock = new Lock(this.backend, resource, token, Number(reply[1]), sentAt, ttlMs, autoExtend);
    if (this.closing.signal.aborted || signal?.aborted) {
      // Given up (shutdown, client gone) while the attempt was in flight: hand the lock back.
      await this.releaseQuietly(lock);
      this.closing.signal.throwIfAborted();
      signal?.throwIfAborted();
    }
    this.held.add(lock);
    return { lock };
  }

  private async releaseQuietly(lock: Lock): Promise<void> {
    try {
      await lock.release();
    } catch (err) {
      this.log.warn(`Lock on "${lock.resource}": release failed, it expires by its TTL: ${(err as Error).message}`);
    }
  }
}
