import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { REDIS_LUA_KEYS } from '../module/redis-lua.constants';
import { RedisLuaSubscriber } from '../module/redis-subscriber';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { outcomeUnknown } from '../scripts/lua-script.errors';
import type { CacheRequestEvent } from '../core/events';
import type { Telemetry } from '../core/telemetry';
import { CacheWakeup } from './cache-wakeup';
import { LOADER_LEASE_MS, LoaderLease, leaseMs } from './cache-lease';
import { message, mustBe } from '../core/messages';
import { checkDuration, checkFunction, checkText, fail, inputSite, type InputSite } from '../core/validation';
import { CacheAsideError, CacheInputError, CacheWaitTimeoutError } from './cache.errors';
import { DEFAULT_LOADER_LOCK_TTL_MS, DEFAULT_WAIT_MS, JSON_SERIALIZER, type CacheSerializer, type GetOrLoadOptions } from './cache.options';

/** Key feature name: keys look like `<prefix>:cache:{<key>}:v` (value), `:lock`, and channel `:ch`. */
const FEATURE = 'cache';

const GET_OR_LOAD = inputSite('CacheAsideService.getOrLoad', CacheInputError);
const INVALIDATE = inputSite('CacheAsideService.invalidate', CacheInputError);

/** Reply of `cache/get-or-lock`: a hit, this caller loads, or another caller loads (its lock's PTTL). */
type AttemptReply = [1, string] | [2] | [3, number];

interface CacheKeys {
  value: string;
  lock: string;
  channel: string;
}

/** The work of one getOrLoad call. */
interface Load<T> {
  key: string;
  keys: CacheKeys;
  token: string;
  ttlMs: number;
  lockTtlMs: number;
  loader: () => T | Promise<T>;
  serializer: CacheSerializer<T>;
}

/**
 * Cache-aside with single flight across every instance: on a miss exactly one caller (holding a
 * short loader lock) runs the loader; the others wait for its PUBLISH on the shared subscriber
 * connection (or, as a fallback, for the lock to expire) and then read the value. No polling loop.
 */
@Injectable()
export class CacheAsideService implements OnModuleDestroy {
  private readonly logger = new Logger('RedisLua');
  private readonly attemptScript: LuaScript<AttemptReply>;
  private readonly storeScript: LuaScript<0 | 1>;
  private readonly releaseScript: LuaScript<0 | 1>;
  private readonly invalidateScript: LuaScript<0 | 1>;
  private readonly renewScript: LuaScript<0 | 1>;
  private readonly waiting = new Set<CacheWakeup>();
  /** Reports each getOrLoad's outcome (when telemetry records events). */
  private readonly telemetry?: Telemetry;
  private closing = false;

  constructor(
    engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
    private readonly subscriber: RedisLuaSubscriber,
  ) {
    this.attemptScript = engine.bundled('cache/get-or-lock', 2);
    this.storeScript = engine.bundled('cache/store', 2);
    this.releaseScript = engine.bundled('cache/release', 1);
    this.invalidateScript = engine.bundled('cache/invalidate', 2);
    this.renewScript = engine.bundled('cache/renew', 1);
    if (engine.telemetry?.recording) this.telemetry = engine.telemetry;
  }

  /**
   * The cached value of `key`, or, on a miss, the value `loader` returns, cached for `ttlMs`.
   * Across all instances sharing the Redis, one caller runs its loader for a missing key at a time;
   * the others wait and get that value. If the loader throws, its error reaches only the caller that
   * ran it; the lock is released and a waiting caller runs its own loader.
   * @throws CacheInputError for a wrong key, TTL or option (nothing is read or written).
   * @throws CacheWaitTimeoutError when another caller's load did not finish within `waitMs`.
   * @throws CacheAsideError when the application shuts down while this caller waits, or the loaded
   *   value cannot be serialized (only to the caller that loaded it).
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const product = await cache.getOrLoad(`product:${id}`, 60_000, () => products.findById(id));
   */
  async getOrLoad<T>(key: string, ttlMs: number, loader: () => T | Promise<T>, options: GetOrLoadOptions<T> = {}): Promise<T> {
    const load: Load<T> = {
      key: checkText(key, 'key', GET_OR_LOAD),
      keys: this.cacheKeys(key, GET_OR_LOAD),
      token: randomUUID(),
      ttlMs: checkDuration(ttlMs, 'ttlMs', GET_OR_LOAD, false, Number.MAX_SAFE_INTEGER, 'argument'),
      lockTtlMs: checkDuration(options.lockTtlMs ?? DEFAULT_LOADER_LOCK_TTL_MS, 'lockTtlMs', GET_OR_LOAD, false, Number.MAX_SAFE_INTEGER),
      loader: checkFunction(loader, 'loader', GET_OR_LOAD, 'a function', 'argument'),
      serializer: options.serializer ?? (JSON_SERIALIZER as CacheSerializer<T>),
    };
    const waitMs = checkDuration(options.waitMs ?? DEFAULT_WAIT_MS, 'waitMs', GET_OR_LOAD, true);
    const { serializer } = load;
    if (typeof serializer?.serialize !== 'function' || typeof serializer.deserialize !== 'function') {
      fail(GET_OR_LOAD, 'serializer', mustBe('serializer', 'an object with serialize and deserialize functions', serializer));
    }

    if (!this.telemetry) return (await this.fetch(load, waitMs)).value;
    try {
      const { value, outcome } = await this.fetch(load, waitMs);
      this.report(outcome, key);
      return value;
    } catch (err) {
      this.report(err instanceof CacheWaitTimeoutError ? 'timeout' : 'error', key);
      throw err;
    }
  }

  /** The cached value, loaded by this call or another, and how it was got (see {@link CacheRequestEvent}). */
  private async fetch<T>(load: Load<T>, waitMs: number): Promise<{ value: T; outcome: CacheRequestEvent['outcome'] }> {
    const { key } = load;
    const got = (value: T, reply: [1, string] | [2], waited: boolean) => ({
      value,
      outcome: reply[0] === 2 ? ('miss-loaded' as const) : waited ? ('waited' as const) : ('hit' as const),
    });
    // A hit (the common case) costs one round trip and no subscription.
    const first = await this.attempt(load);
    if (first[0] !== 3) return got(await this.settle(load, first), first, false);

    // Someone else is loading: listen first, then read again, so that its PUBLISH cannot fall
    // between our read and our wait.
    this.assertOpen(key);
    const deadline = Date.now() + waitMs;
    const wakeup = new CacheWakeup();
    const unsubscribe = await this.subscriber.subscribe(load.keys.channel, () => wakeup.signal());
    this.waiting.add(wakeup);
    try {
      for (;;) {
        this.assertOpen(key);
        wakeup.reset();
        const reply = await this.attempt(load);
        if (reply[0] !== 3) return got(await this.settle(load, reply), reply, true);
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new CacheWaitTimeoutError(key, waitMs);
        // Woken by the loader's PUBLISH; if it died without one, its lock expires after `pttl` ms.
        const lockLeft = reply[1] > 0 ? reply[1] + 1 : leaseMs(load.lockTtlMs);
        this.assertOpen(key);
        await wakeup.wait(Math.min(remaining, lockLeft));
      }
    } finally {
      this.waiting.delete(wakeup);
      unsubscribe();
    }
  }

  /**
   * Deletes the cached value of `key` and cancels a load in progress: a loader that started before
   * the invalidation (and may have read old data) does not store its value; waiting callers load
   * again. True if there was a value or a load to cancel.
   * @throws CacheInputError for an empty or over-long key.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * await cache.invalidate(`product:${id}`); // after the product changed
   */
  async invalidate(key: string): Promise<boolean> {
    const keys = this.cacheKeys(key, INVALIDATE);
    return (await this.invalidateScript.run([keys.value, keys.lock], [keys.channel])) === 1;
  }

  /** Wakes every waiting caller (they fail with a {@link CacheAsideError}) while Redis is still connected. */
  onModuleDestroy(): void {
    this.closing = true;
    for (const wakeup of this.waiting) wakeup.signal();
  }

  /** Reports how a getOrLoad ended (a `cache.request` event). */
  private report(outcome: CacheRequestEvent['outcome'], key: string): void {
    this.telemetry?.emit({ type: 'cache.request', outcome, key });
  }

  /** Waiting callers stop when the application shuts down (checked before and after every wait). */
  private assertOpen(key: string): void {
    if (this.closing)
      throw new CacheAsideError(message('CacheAsideService.getOrLoad', `the application is shutting down; stopped waiting for "${key}"`));
  }

  /**
   * One read: a hit, the loader lock (a {@link LOADER_LEASE_MS} lease, or `lockTtlMs` if shorter), or
   * who holds it. When the call fails without a reply, it may still have taken the lock for this
   * caller, which will never load: the lock is released by token as soon as the connection allows.
   */
  private attempt(load: Load<unknown>): Promise<AttemptReply> {
    const lease = leaseMs(load.lockTtlMs);
    return this.attemptScript.run([load.keys.value, load.keys.lock], [load.token, lease]).catch((err: unknown) => {
      if (outcomeUnknown(err)) void this.release(load, 'its lock-taking reply was lost');
      throw err;
    });
  }

  /** A hit → the stored value; this caller holds the lock → run the loader. */
  private async settle<T>(load: Load<T>, reply: [1, string] | [2]): Promise<T> {
    if (reply[0] === 1) return load.serializer.deserialize(reply[1]);
    return this.runLoader(load);
  }

  private async runLoader<T>(load: Load<T>): Promise<T> {
    let value: T;
    let text: string;
    const lease = new LoaderLease(
      load.lockTtlMs,
      (ms) => this.renewScript.run([load.keys.lock], [load.token, ms]),
      (err) => this.logger.debug(`CacheAsideService: could not renew the loader lock of "${load.key}": ${err.message}`),
    );
    try {
      value = await load.loader();
      text = load.serializer.serialize(value);
      if (typeof text !== 'string') {
        throw new CacheAsideError(
          message('CacheAsideService.getOrLoad', `the serializer cannot store the value loaded for "${load.key}" (got ${typeof value})`),
        );
      }
    } catch (err) {
      lease.stop();
      await this.release(load, 'its load failed');
      throw err;
    }
    lease.stop();
    try {
      await this.storeScript.run([load.keys.value, load.keys.lock], [load.token, text, load.ttlMs, load.keys.channel]);
    } catch (err) {
      // The value was loaded: the caller gets it. If the store did not run, release the lock so that
      // a waiter loads at once (a no-op if it ran: the lock is then gone).
      this.logger.warn(`CacheAsideService: could not store the value of "${load.key}": ${(err as Error).message}`);
      if (outcomeUnknown(err)) void this.release(load, 'its store reply was lost');
    }
    return value;
  }

  /**
   * Releases this caller's loader lock (if it still holds it) and wakes the waiters, so that one of
   * them loads at once. Never throws: a failure never hides the loader's error, and the lease bounds
   * an unreleased lock.
   */
  private async release(load: Load<unknown>, why: string): Promise<void> {
    try {
      await this.releaseScript.run([load.keys.lock], [load.token, load.keys.channel]);
    } catch (err) {
      this.logger.warn(
        `CacheAsideService: could not release the loader lock of "${load.key}" (${why}); it expires within ${LOADER_LEASE_MS} ms: ${(err as Error).message}`,
      );
    }
  }

  private cacheKeys(key: string, site: InputSite): CacheKeys {
    checkText(key, 'key', site);
    return {
      value: this.keys.key(FEATURE, [key], 'v'),
      lock: this.keys.key(FEATURE, [key], 'lock'),
      channel: this.keys.key(FEATURE, [key], 'ch'),
    };
  }
}
