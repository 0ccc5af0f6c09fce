import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { checkDuration, checkText, inputSite, type InputSite } from '../core/validation';
import { REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import { RedisLuaSubscriber } from '../module/redis-subscriber';
import type { KeyBuilder } from '../scripts/key-builder';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { Leases, type LeaseRequest } from './leases';
import type { Lock } from './lock';
import { LockInputError, SemaphoreTimeoutError } from './lock.errors';
import { DEFAULT_LOCK_TTL_MS, DEFAULT_LOCK_WAIT_MS, LOCK_TOKEN } from './lock.options';
import { LEASE_KINDS, LockStore } from './lock-store';
import {
  SEMAPHORE_OPTION_KEYS,
  validateSemaphoreOptions,
  type AcquireSemaphoreOptions,
  type TryAcquireSemaphoreOptions,
} from './semaphore.options';

const site = (method: string): InputSite => inputSite(`SemaphoreService.${method}`, LockInputError);
const ACQUIRE = site('acquire');
const TRY_ACQUIRE = site('tryAcquire');
const RELEASE = site('release');
const EXTEND = site('extend');

/**
 * Distributed counting semaphores: at most `permits` holders of a name at once, across every
 * instance (N jobs against a GPU or a partner API). A permit is a {@link Lock}: owner-checked by a
 * random token, renewed while held, fenced, its `signal` aborted if it is lost; waiters are woken by
 * a release instead of polling. The permit of a holder that died comes back when its TTL runs out.
 *
 * ```ts
 * const report = await semaphores.withPermit('gpu-jobs', { permits: 4 }, (permit) => render(job, permit.signal));
 * ```
 */
@Injectable()
export class SemaphoreService implements OnModuleDestroy {
  private readonly leases: Leases;
  /** The module-level defaults (`forRoot({ lock })` over the built-in ones), shared with the locks. */
  readonly defaults: Readonly<{ ttlMs: number; waitMs: number }>;

  constructor(
    engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) keys: KeyBuilder,
    @Inject(REDIS_LUA_OPTIONS) options: RedisLuaModuleOptions,
    subscriber: RedisLuaSubscriber,
  ) {
    this.defaults = Object.freeze({
      ttlMs: options.lock?.ttlMs ?? DEFAULT_LOCK_TTL_MS,
      waitMs: options.lock?.waitMs ?? DEFAULT_LOCK_WAIT_MS,
    });
    const log = new Logger('RedisLua');
    this.leases = new Leases(
      new LockStore(engine, keys, log, LEASE_KINDS.semaphore),
      subscriber,
      log,
      {
        timeout: (request, waitMs, retryAfterMs) => new SemaphoreTimeoutError(request.name, request.permits, waitMs, retryAfterMs),
        noun: 'Semaphore',
        kind: 'semaphore',
      },
      engine.telemetry,
    );
  }

  /**
   * Takes one of the `permits` of `name`, waiting up to `waitMs` while all are held. Waiting is
   * event-driven: a release anywhere wakes a waiter at once; a holder that vanished frees its permit
   * when its TTL runs out.
   * @throws SemaphoreTimeoutError when every permit is still held after `waitMs` (0: one attempt).
   * @throws LockInputError on an empty name or invalid options (`permits` is required), before any Redis call.
   * @throws the `signal`'s reason when it aborts while waiting.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const permit = await semaphores.acquire('partner-api', { permits: 10, waitMs: 2_000 });
   * try {
   *   await partner.call(order);
   * } finally {
   *   await permit.release();
   * }
   */
  async acquire(name: string, options: AcquireSemaphoreOptions): Promise<Lock> {
    checkText(name, 'name', ACQUIRE);
    validateSemaphoreOptions(options, ACQUIRE, SEMAPHORE_OPTION_KEYS.acquire);
    return this.leases.acquire(this.request(name, options), options.waitMs ?? this.defaults.waitMs, options.signal);
  }

  /**
   * One attempt: a permit, or `null` if all are held.
   * @throws LockInputError on an empty name or invalid options, before any Redis call.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call.
   * @example
   * const permit = await semaphores.tryAcquire('exports', { permits: 2 });
   * if (!permit) return 'busy, try later';
   */
  async tryAcquire(name: string, options: TryAcquireSemaphoreOptions): Promise<Lock | null> {
    checkText(name, 'name', TRY_ACQUIRE);
    validateSemaphoreOptions(options, TRY_ACQUIRE, SEMAPHORE_OPTION_KEYS.tryAcquire);
    return this.leases.tryAcquire(this.request(name, options));
  }

  /**
   * Runs `fn` holding a permit of `name` and gives it back in every outcome. `fn` receives the
   * permit (its `fence`, and `signal`, aborted if the permit is lost). An error of `fn` is rethrown
   * unchanged; a release that fails after `fn` succeeded is logged (the permit then expires by its
   * TTL) and `fn`'s result is returned.
   * @throws what {@link acquire} throws, before `fn` runs; `fn`'s own error, unchanged.
   * @example
   * const image = await semaphores.withPermit('gpu-jobs', { permits: 4, waitMs: 30_000 }, () => gpu.render(scene));
   */
  async withPermit<T>(name: string, options: AcquireSemaphoreOptions, fn: (permit: Lock) => T | Promise<T>): Promise<T> {
    return this.leases.run(await this.acquire(name, options), fn);
  }

  /**
   * Gives back the permit of `name` held with `token` (e.g. a token handed to another process) and
   * wakes a waiter. Resolves `true` if it was held.
   * @throws LockInputError on an empty name or token, before any Redis call.
   * @throws RedisLuaUnavailableError as {@link acquire}.
   * @example `await semaphores.release('gpu-jobs', tokenFromAnotherProcess)`
   */
  async release(name: string, token: string): Promise<boolean> {
    checkText(name, 'name', RELEASE);
    checkText(token, 'token', RELEASE, LOCK_TOKEN);
    return this.leases.release(name, token);
  }

  /**
   * Sets the TTL of the permit of `name` held with `token` to `ttlMs`, if it has not expired.
   * @throws LockInputError on an empty name or token or a bad `ttlMs`, before any Redis call.
   * @throws RedisLuaUnavailableError as {@link acquire}.
   * @example `await semaphores.extend('gpu-jobs', token, 60_000)`
   */
  async extend(name: string, token: string, ttlMs: number): Promise<boolean> {
    checkText(name, 'name', EXTEND);
    checkText(token, 'token', EXTEND, LOCK_TOKEN);
    checkDuration(ttlMs, 'ttlMs', EXTEND, false, undefined, 'argument');
    return this.leases.extend(name, token, ttlMs);
  }

  /** Stops waiting acquisitions and the renewal of held permits (they expire by their TTL; their `signal` aborts). */
  onModuleDestroy(): void {
    this.leases.close('nest-redis-lua: SemaphoreService is shutting down');
  }

  private request(name: string, options: TryAcquireSemaphoreOptions): LeaseRequest {
    return { name, ttlMs: options.ttlMs ?? this.defaults.ttlMs, autoExtend: options.autoExtend ?? true, permits: options.permits };
  }
}
