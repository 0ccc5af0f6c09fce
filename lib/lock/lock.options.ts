import type { ExecutionContext } from '@nestjs/common';

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

/** Options of {@link LockService.acquire} and {@link LockService.withLock}. */
export interface AcquireLockOptions extends LockModuleOptions {
  /**
   * Renew the lock every `ttlMs / 3` while it is held (default `true`). With `false` the lock simply
   * expires after `ttlMs` unless {@link Lock.extend} is called; `signal` aborts when it expires.
   */
  autoExtend?: boolean;
  /** Stops waiting: `acquire` rejects with the signal's reason and takes no lock. */
  signal?: AbortSignal;
}

/** Options of {@link LockService.tryAcquire}: one attempt, no waiting. */
export type TryAcquireLockOptions = Omit<AcquireLockOptions, 'waitMs' | 'signal'>;

/**
 * The resource of `@WithLock`: a template such as `'order:{params.id}'` (placeholders
 * `{params.x}`, `{query.x}`, `{body.x}`, `{headers.x}`, `{user.x}`, dotted paths allowed), or a function
 * of the execution context returning the resource (or a promise of it).
 */
export type LockResource = string | ((context: ExecutionContext) => string | Promise<string>);

/** Options of the `@WithLock` decorator (module defaults apply to what is left out). */
export interface WithLockOptions extends LockModuleOptions {
  /** Status sent when the lock is still held after `waitMs` (default 409 Conflict). */
  conflictStatus?: number;
  /** Renew the lock while the handler runs (default `true`). */
  autoExtend?: boolean;
}

/** Default lock TTL in ms. */
export const DEFAULT_LOCK_TTL_MS = 30_000;
/** Default wait for a held lock in ms. */
export const DEFAULT_LOCK_WAIT_MS = 5_000;
/** Largest ttlMs / waitMs: what a Node.js timer can wait for. */
export const MAX_LOCK_MS = 2_147_483_647;

/** Throws unless `value` is an integer in [min, MAX_LOCK_MS]; `where` names the caller in the message. */
export function checkLockMs(value: unknown, option: string, min: number, where: string): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_LOCK_MS) {
    const what = min > 0 ? 'a positive integer' : 'an integer >= 0';
    throw new TypeError(
      `nest-redis-lua: ${where}: option "${option}" must be ${what} number of ms (at most ${MAX_LOCK_MS}), got ${String(value)}`,
    );
  }
}

/** Validates lock timing options (`ttlMs` > 0, `waitMs` >= 0, integers); `where` names the caller. */
export function validateLockOptions(options: LockModuleOptions | undefined, where: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`nest-redis-lua: ${where}: lock options must be an object`);
  }
  checkLockMs(options.ttlMs, 'ttlMs', 1, where);
  checkLockMs(options.waitMs, 'waitMs', 0, where);
}

/** Validates `@WithLock` options at decoration time. */
export function validateWithLockOptions(options: WithLockOptions, where: string): void {
  validateLockOptions(options, where);
  const { conflictStatus, autoExtend } = options;
  if (conflictStatus !== undefined && (!Number.isInteger(conflictStatus) || conflictStatus < 400 || conflictStatus > 599)) {
    throw new TypeError(
      `nest-redis-lua: ${where}: option "conflictStatus" must be an HTTP error status (400-599), got ${String(conflictStatus)}`,
    );
  }
  if (autoExtend !== undefined && typeof autoExtend !== 'boolean') {
    throw new TypeError(`nest-redis-lua: ${where}: option "autoExtend" must be a boolean, got ${String(autoExtend)}`);
  }
}
