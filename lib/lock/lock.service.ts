import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import { checkDuration, checkText, fail, inputSite, type InputSite } from '../core/validation';
import { mustBe } from '../core/messages';
import { REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import { RedisLuaSubscriber } from '../module/redis-subscriber';
import type { KeyBuilder } from '../scripts/key-builder';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import type { Lock } from './lock';
import { LockInputError, LockTimeoutError } from './lock.errors';
import {
  DEFAULT_LOCK_TTL_MS,
  DEFAULT_LOCK_WAIT_MS,
  LOCK_TOKEN,
  MAX_LOCK_RESOURCES,
  LOCK_OPTION_KEYS,
  replicaRequirement,
  validateLockOptions,
  type AcquireLockOptions,
  type LockMode,
  type LockModuleOptions,
  type LockTokenOptions,
  type TryAcquireLockOptions,
} from './lock.options';
import { LEASE_KINDS, LockStore } from './lock-store';
import { Leases, type LeaseRequest, type LeasesConfig } from './leases';
import { MultiLock } from './multi-lock';
import { ReplicaAcks } from './replica-acks';

const site = (method: string): InputSite => inputSite(`LockService.${method}`, LockInputError);
const ACQUIRE = site('acquire');
const TRY_ACQUIRE = site('tryAcquire');
const ACQUIRE_ALL = site('acquireAll');
const RELEASE = site('release');
const EXTEND = site('extend');

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
export class LockService implements OnModuleDestroy, OnApplicationShutdown {
  private readonly store: LockStore;
  /** Taking, waiting, renewing and shutdown of write (exclusive) and read locks, and fair write locks. */
  private readonly leases: Readonly<Record<LockMode | 'fair', Leases>>;
  /** The connection of acquisitions with `replicas` (opened on first use). */
  private readonly acks: ReplicaAcks;
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
    const log = new Logger('RedisLua');
    this.acks = new ReplicaAcks(engine.client, log);
    this.store = new LockStore(engine, keys, log, LEASE_KINDS.lock, this.acks);
    const timeout = (request: LeaseRequest, waitMs: number, retryAfterMs: number | undefined): Error =>
      new LockTimeoutError(request.name, waitMs, retryAfterMs);
    const leases = (store: LockStore, config: Omit<LeasesConfig, 'timeout'>): Leases =>
      new Leases(store, subscriber, log, { timeout, ...config }, engine.telemetry);
    this.leases = {
      write: leases(this.store, { noun: 'Lock', kind: 'lock' }),
      fair: leases(new LockStore(engine, keys, log, LEASE_KINDS.fair, this.acks), { noun: 'Lock', kind: 'fair-lock', fair: true }),
      read: leases(new LockStore(engine, keys, log, LEASE_KINDS.read, this.acks), { noun: 'Read lock', kind: 'read-lock', shared: true }),
    };
  }

  /**
   * Takes the lock on `resource`, waiting up to `waitMs` while another owner holds it. Waiting is
   * event-driven: a release anywhere wakes a waiter at once; a lock whose holder vanished is retried
   * when its TTL runs out. With `mode: 'read'` the lock is shared with other readers and waits only
   * for a writer (one that holds the resource or waits for it). With `fair: true`, waiters of every
   * process get the lock in arrival order.
   * @throws LockTimeoutError when the lock is still held after `waitMs` (0: one attempt).
   * @throws LockReplicationError when `replicas` were asked for and fewer acknowledged the lock within
   *   `replicaTimeoutMs` (it was released again; no further waiting).
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
    return this.pick(options).acquire(this.request(resource, options), options.waitMs ?? this.defaults.waitMs, options.signal);
  }

  /**
   * One attempt: the lock, or `null` if another owner holds it.
   * @throws LockReplicationError when `replicas` were asked for and fewer acknowledged the lock (released again).
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
    return this.pick(options).tryAcquire(this.request(resource, options));
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
    return this.pick(options).run(await this.acquire(resource, options), fn);
  }

  /**
   * Takes the locks on every one of `resources` (all, or none): one by one in a global order (the
   * resources sorted by code unit), so that two callers locking overlapping sets never wait for each
   * other in a cycle, whatever order they give them in. Works when the resources hash to different
   * cluster slots: each lock is an ordinary lock of its resource, and a plain `acquire` of one of them
   * is excluded too. `waitMs` bounds the whole acquisition; if one lock is not had in time (or Redis
   * fails, or `signal` aborts), the locks already taken are released before it rejects.
   * @throws LockTimeoutError naming the resource still held when the wait ran out.
   * @throws LockReplicationError when `replicas` were asked for and a lock was not acknowledged in time.
   * @throws LockInputError on an empty list, more than {@link MAX_LOCK_RESOURCES} resources, an empty or
   *   repeated resource, or invalid options, before any Redis call.
   * @throws the `signal`'s reason when it aborts while waiting.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses a call.
   * @example
   * const both = await locks.acquireAll([`acct:${from}`, `acct:${to}`], { waitMs: 2_000 });
   * try {
   *   await ledger.transfer(from, to, amount, both.fences);
   * } finally {
   *   await both.release();
   * }
   */
  async acquireAll(resources: readonly string[], options: AcquireLockOptions = {}): Promise<MultiLock> {
    const ordered = checkResources(resources, ACQUIRE_ALL);
    validateLockOptions(options, ACQUIRE_ALL, LOCK_OPTION_KEYS.acquire);
    const leases = this.pick(options);
    const deadline = performance.now() + (options.waitMs ?? this.defaults.waitMs);
    const taken: Lock[] = [];
    try {
      for (const resource of ordered) {
        const waitMs = Math.max(0, Math.ceil(deadline - performance.now()));
        taken.push(await leases.acquire(this.request(resource, options), waitMs, options.signal));
      }
    } catch (err) {
      await leases.releaseAll(taken);
      throw err;
    }
    return new MultiLock(taken);
  }

  /**
   * Runs `fn` holding the locks on every one of `resources` (see {@link acquireAll}) and releases
   * them in every outcome, as {@link withLock} does for one.
   * @throws what {@link acquireAll} throws, before `fn` runs; `fn`'s own error, unchanged.
   * @example
   * await locks.withLocks([`acct:${from}`, `acct:${to}`], () => ledger.transfer(from, to, amount));
   */
  async withLocks<T>(resources: readonly string[], fn: (locks: MultiLock) => T | Promise<T>, options: AcquireLockOptions = {}): Promise<T> {
    const all = await this.acquireAll(resources, options);
    return this.pick(options).run(all, fn);
  }

  /**
   * Releases the lock on `resource` if it is held with `token` (e.g. a token handed to another
   * process) and wakes the waiters. Resolves `true` if it deleted the lock; a wrong token deletes nothing.
   * When the call fails without a reply (the connection dropped), it rejects with that error and the
   * release is sent once more in the background (compare-and-delete: harmless if the first one ran).
   * @throws LockInputError on an empty resource or token, before any Redis call.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * A read lock's token is released with `{ mode: 'read' }`.
   * @example `await locks.release('invoice:42', tokenFromAnotherProcess)`
   */
  async release(resource: string, token: string, options: LockTokenOptions = {}): Promise<boolean> {
    checkText(resource, 'resource', RELEASE);
    checkText(token, 'token', RELEASE, LOCK_TOKEN);
    validateLockOptions(options, RELEASE, LOCK_OPTION_KEYS.token);
    return this.pick(options).release(resource, token);
  }

  /**
   * Sets the TTL of the lock on `resource` to `ttlMs` if it is held with `token` (a read lock's: with
   * `{ mode: 'read' }`).
   * @throws LockInputError on an empty resource or token or a bad `ttlMs`, before any Redis call.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example `await locks.extend('invoice:42', token, 60_000)`
   */
  async extend(resource: string, token: string, ttlMs: number, options: LockTokenOptions = {}): Promise<boolean> {
    checkText(resource, 'resource', EXTEND);
    checkText(token, 'token', EXTEND, LOCK_TOKEN);
    checkDuration(ttlMs, 'ttlMs', EXTEND, false, undefined, 'argument');
    validateLockOptions(options, EXTEND, LOCK_OPTION_KEYS.token);
    return this.pick(options).extend(resource, token, ttlMs);
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
    for (const leases of Object.values(this.leases)) leases.close('nest-redis-lua: LockService is shutting down');
  }

  /** Closes the connection of replica-acknowledged acquisitions, if one was opened. */
  async onApplicationShutdown(): Promise<void> {
    await this.acks.close();
  }

  /** The leases an acquisition (or a release by token) goes through. A fair lock is released as any write lock. */
  private pick(options: { mode?: LockMode; fair?: boolean }): Leases {
    return options.fair ? this.leases.fair : this.leases[options.mode ?? 'write'];
  }

  private request(resource: string, options: TryAcquireLockOptions): LeaseRequest {
    return {
      name: resource,
      ttlMs: options.ttlMs ?? this.defaults.ttlMs,
      autoExtend: options.autoExtend ?? true,
      permits: 1,
      replicas: replicaRequirement(options),
    };
  }
}

/** The resources of `acquireAll`, checked and in the global order. */
function checkResources(resources: readonly string[], where: InputSite): string[] {
  if (!Array.isArray(resources) || resources.length === 0 || resources.length > MAX_LOCK_RESOURCES) {
    fail(where, 'resources', mustBe('resources', `an array of 1 to ${MAX_LOCK_RESOURCES} resources`, resources, 'argument'));
  }
  resources.forEach((resource, i) => checkText(resource, `resources[${i}]`, where));
  const ordered = [...resources].sort();
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i] === ordered[i - 1]) fail(where, 'resources', `resources must be distinct, got "${ordered[i]}" twice`);
  }
  return ordered;
}
