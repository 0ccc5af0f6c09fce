import type { ExecutionContext } from '@nestjs/common';
import {
  checkBoolean,
  checkChoice,
  checkDuration,
  checkInteger,
  checkKnownKeys,
  checkObject,
  checkSignal,
  fail,
  keysOf,
  type InputSite,
} from '../core/validation';
import type { ReplicaRequirement } from './leases';

/** Defaults of every lock, set with `RedisLuaModule.forRoot({ lock: { ... } })`. */
export interface LockModuleOptions {
  /**
   * How long a lock lives in Redis without renewal, in ms (default 30000). While it is held, the
   * watchdog renews it every `ttlMs / 3`, so this bounds how long a crashed holder blocks others.
   */
  ttlMs?: number;
  /** How long `acquire` and `@WithLock` wait for a held lock before giving up, in ms (default 5000). */
  waitMs?: number;
}

/** What every lease (a lock, a semaphore permit) is taken with. */
export interface LeaseOptions extends LockModuleOptions {
  /**
   * Renew the lease every `ttlMs / 3` while it is held (default `true`). With `false` it simply
   * expires after `ttlMs` unless {@link Lock.extend} is called; `signal` aborts when it expires.
   */
  autoExtend?: boolean;
  /** Stops waiting: `acquire` rejects with the signal's reason and takes nothing. */
  signal?: AbortSignal;
}

/**
 * A lock's mode: `'write'` (the default) is exclusive; `'read'` locks of a resource are shared by
 * any number of readers and exclude its writers. A writer waits for the readers in, and while it
 * waits no new reader gets in (readers cannot starve a writer).
 */
export type LockMode = 'read' | 'write';

/**
 * A lock that counts only once replicas have it (see "Replica-acknowledged locks" in the README):
 * after the acquiring script, `WAIT replicas replicaTimeoutMs` on the server connection that ran it.
 */
export interface ReplicaAckOptions {
  /**
   * How many replicas of the lock's master must acknowledge the acquisition (integer 0-64; default 0:
   * no check). With fewer acknowledgements within `replicaTimeoutMs`, the lock is released and the
   * call rejects with `LockReplicationError` at once (it does not wait for `waitMs`).
   */
  replicas?: number;
  /** How long to wait for the acknowledgements, in ms (default 1000; needs `replicas`). */
  replicaTimeoutMs?: number;
}

/** Options of {@link LockService.acquire} and {@link LockService.withLock}. */
export interface AcquireLockOptions extends LeaseOptions, ReplicaAckOptions {
  /** `'write'` (default: exclusive) or `'read'` (shared with other readers), see {@link LockMode}. */
  mode?: LockMode;
  /**
   * Take the lock in arrival order (default `false`): waiters of every process queue in Redis and get
   * it one after the other, first come first served; an attempt never overtakes a queued waiter.
   * A write lock only (not with `mode: 'read'`). See "Fair locks" in the README.
   */
  fair?: boolean;
}

/** Options of {@link LockService.tryAcquire}: one attempt, no waiting. */
export type TryAcquireLockOptions = Omit<AcquireLockOptions, 'waitMs' | 'signal'>;

/** Options of {@link LockService.release} and {@link LockService.extend} by token. */
export interface LockTokenOptions {
  /** The mode the lock was taken in (default `'write'`). */
  mode?: LockMode;
}

/**
 * The resource of `@WithLock`: a template such as `'order:{params.id}'` (placeholders
 * `{params.x}`, `{query.x}`, `{body.x}`, `{headers.x}`, `{user.x}`, dotted paths allowed), or a function
 * of the execution context returning the resource (or a promise of it). Placeholder values are
 * escaped so that distinct values never give one resource: two placeholders need text between
 * them, and that text cannot hold `%`. A `{params.x}` must name a parameter of the route's path
 * (checked at boot).
 */
export type LockResource = string | ((context: ExecutionContext) => string | number | Promise<string | number>);

/** Options of the `@WithLock` decorator (module defaults apply to what is left out). */
export interface WithLockOptions extends LockModuleOptions, ReplicaAckOptions {
  /** `'write'` (default: exclusive) or `'read'` (shared with other readers), see {@link LockMode}. */
  mode?: LockMode;
  /** Requests get the lock in arrival order, see {@link AcquireLockOptions.fair} (default `false`). */
  fair?: boolean;
  /** Status sent when the lock is still held after `waitMs` (default 409 Conflict). */
  conflictStatus?: number;
  /** Renew the lock while the handler runs (default `true`). */
  autoExtend?: boolean;
  /**
   * What happens when the lock is lost before the handler's response is out (its lease ran out:
   * renewal failed, the process was paused, `autoExtend: false` with a handler slower than `ttlMs`):
   * - `'error'` (default): the response is not sent; the client gets `conflictStatus` (409) with a
   *   JSON body saying mutual exclusion did not hold (another request may have run meanwhile);
   * - `'log'`: the handler's response is sent as it is and a warning is logged.
   * Either way the handler's side effects happened: protect writes with `lock.fence` (see the README).
   */
  onLost?: 'error' | 'log';
}

/** The values of `@WithLock`'s `onLost`. */
const ON_LOST = ['error', 'log'] as const;
/** The values of `mode`. */
const LOCK_MODES = ['read', 'write'] as const;

/** A lock token: what this library hands out is 24 characters; one handed in may be up to 256. */
export const LOCK_TOKEN = { maxLength: 256 };

/** The most resources one `LockService.acquireAll` (or `@WithLock([...])`) may lock. */
export const MAX_LOCK_RESOURCES = 64;

/** The most replicas `replicas` may ask for. */
const MAX_REPLICAS = 64;
/** Default of `replicaTimeoutMs`. */
export const DEFAULT_REPLICA_TIMEOUT_MS = 1_000;

/** Default lock TTL in ms. */
export const DEFAULT_LOCK_TTL_MS = 30_000;
/** Default wait for a held lock in ms. */
export const DEFAULT_LOCK_WAIT_MS = 5_000;
/** The keys each kind of lock options may have: any other is a typo or an unsupported option, refused. */
export const LOCK_OPTION_KEYS = {
  module: keysOf<LockModuleOptions>({ ttlMs: true, waitMs: true }),
  acquire: keysOf<AcquireLockOptions>({
    ttlMs: true,
    waitMs: true,
    autoExtend: true,
    signal: true,
    mode: true,
    fair: true,
    replicas: true,
    replicaTimeoutMs: true,
  }),
  tryAcquire: keysOf<TryAcquireLockOptions>({
    ttlMs: true,
    autoExtend: true,
    mode: true,
    fair: true,
    replicas: true,
    replicaTimeoutMs: true,
  }),
  token: keysOf<LockTokenOptions>({ mode: true }),
  withLock: keysOf<WithLockOptions>({
    ttlMs: true,
    waitMs: true,
    conflictStatus: true,
    autoExtend: true,
    onLost: true,
    mode: true,
    fair: true,
    replicas: true,
    replicaTimeoutMs: true,
  }),
} as const;

/**
 * Checks lock options where given (`ttlMs` > 0, `waitMs` >= 0, whole ms a timer can wait,
 * `autoExtend` a boolean, `signal` an AbortSignal) and that no other key than `known` is there,
 * naming `site.where` in the message.
 */
export function validateLockOptions(options: AcquireLockOptions | undefined, site: InputSite, known: readonly string[]): void {
  if (options === undefined) return;
  checkObject(options, 'lock', site, 'an object of lock options');
  checkKnownKeys(options, known, site);
  if (options.mode !== undefined) checkChoice(options.mode, 'mode', site, LOCK_MODES);
  const { fair } = options as { fair?: boolean };
  if (fair !== undefined) {
    checkBoolean(fair, 'fair', site);
    if (fair && options.mode === 'read') fail(site, 'fair', 'option "fair" takes write locks: it cannot be combined with mode \'read\'');
  }
  if (options.ttlMs !== undefined) checkDuration(options.ttlMs, 'ttlMs', site);
  if (options.waitMs !== undefined) checkDuration(options.waitMs, 'waitMs', site, true);
  if (options.autoExtend !== undefined) checkBoolean(options.autoExtend, 'autoExtend', site);
  if (options.signal !== undefined) checkSignal(options.signal, 'signal', site);
  const { replicas, replicaTimeoutMs } = options as ReplicaAckOptions;
  if (replicas !== undefined) checkInteger(replicas, 'replicas', site, 0, MAX_REPLICAS);
  if (replicaTimeoutMs !== undefined) {
    checkDuration(replicaTimeoutMs, 'replicaTimeoutMs', site);
    if (!replicas)
      fail(site, 'replicaTimeoutMs', `option "replicaTimeoutMs" needs option "replicas" (1 or more), got ${replicas ?? 'none'}`);
  }
}

/** What `replicas` and `replicaTimeoutMs` ask of an acquisition (validated), or undefined for no check. */
export function replicaRequirement(options: ReplicaAckOptions): ReplicaRequirement | undefined {
  return options.replicas ? { count: options.replicas, timeoutMs: options.replicaTimeoutMs ?? DEFAULT_REPLICA_TIMEOUT_MS } : undefined;
}

/** Checks `@WithLock` options at decoration time. */
export function validateWithLockOptions(
  options: WithLockOptions,
  site: InputSite,
  known: readonly string[] = LOCK_OPTION_KEYS.withLock,
): void {
  validateLockOptions(options, site, known);
  if (options.conflictStatus !== undefined) checkInteger(options.conflictStatus, 'conflictStatus', site, 400, 599);
  if (options.onLost !== undefined) checkChoice(options.onLost, 'onLost', site, ON_LOST);
}
