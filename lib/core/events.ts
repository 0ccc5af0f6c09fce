import type { RedisLuaUnavailableReason } from './errors';

/**
 * What the library reports, one typed object per event (`type` tells which): to
 * `forRoot({ onEvent })`, and as OpenTelemetry metrics when an SDK is registered (README,
 * "Observability"). Each event's docs name its metric and the fields that become the metric's
 * attributes, all of bounded cardinality; the other fields (the rate-limit identifier, the lock's
 * resource, the cache key) are for the listener only, never attributes.
 */
export type RedisLuaEvent =
  | RateLimitDecisionEvent
  | LockAcquireEvent
  | LockHeldEvent
  | LockLostEvent
  | CacheRequestEvent
  | CounterRejectionEvent
  | LeaderboardSubmissionEvent
  | ScriptCallEvent
  | ScriptReloadEvent
  | ConnectionUnavailableEvent;

/**
 * One consume (`RateLimiterService.consume` / `reserve`, or a request through `@RateLimit`) decided:
 * - `allowed` / `denied`: Redis decided (a denial answered from this process's deny cache too);
 * - `blocked`: denied by a manual ban (`RateLimiterService.block`);
 * - `degraded`: Redis could not decide and the fail mode did (`open`: admitted, nothing counted;
 *   `local`: this process's in-memory limiter, `allowed` says how);
 * - `unavailable`: Redis could not decide and `failMode: 'closed'` refused the hit.
 * Metric `nest_redis_lua.rate_limit.decisions` (attributes `outcome`, `rule`, `route`).
 */
export interface RateLimitDecisionEvent {
  readonly type: 'rate_limit.decision';
  readonly outcome: 'allowed' | 'denied' | 'blocked' | 'degraded' | 'unavailable';
  /** Whether the hit was admitted (`degraded` decisions may be either). */
  readonly allowed: boolean;
  /** The tightest rule's name (the denying one when denied; the first rule when Redis could not decide). */
  readonly rule: string;
  /** The route (`GET /users/:id`, or `Controller.handler` outside HTTP) under `@RateLimit`; a call's `route` option otherwise. */
  readonly route?: string;
  /** The limiter key (identifier): for the listener only. */
  readonly key: string;
  readonly cost: number;
}

/**
 * An acquisition ended: `acquired`, `timeout` (still held by others after `waitMs`, or at once with
 * `waitMs: 0`), `busy` (`tryAcquire` found it held), `aborted` (the caller's signal, or shutdown),
 * `unavailable` (Redis could not answer), `error` (anything else).
 * Metric `nest_redis_lua.lock.acquire.duration` (ms; attributes `kind`, `outcome`).
 */
export interface LockAcquireEvent {
  readonly type: 'lock.acquire';
  readonly kind: LeaseKind;
  readonly outcome: 'acquired' | 'timeout' | 'busy' | 'aborted' | 'unavailable' | 'error';
  /** From the call to its outcome, waiting included. */
  readonly durationMs: number;
  /** The resource (semaphore name): for the listener only. */
  readonly resource: string;
}

/** A held lease ended, `released` or `lost`. Metric `nest_redis_lua.lock.held.duration` (ms; attributes `kind`, `end`). */
export interface LockHeldEvent {
  readonly type: 'lock.held';
  readonly kind: LeaseKind;
  readonly end: 'released' | 'lost';
  /** From the acquisition to the release or loss. */
  readonly durationMs: number;
  readonly resource: string;
}

/**
 * A held lease was lost (its `signal` aborted): `taken` (a renewal found it deleted, expired or
 * taken), `expired` (`autoExtend: false` and it ran out), `unrenewed` (Redis did not answer the
 * renewals in time), `stalled` (the process did not run in time), `shutdown` (no longer renewed).
 * Metric `nest_redis_lua.lock.lost` (attributes `kind`, `reason`).
 */
export interface LockLostEvent {
  readonly type: 'lock.lost';
  readonly kind: LeaseKind;
  readonly reason: 'taken' | 'expired' | 'unrenewed' | 'stalled' | 'shutdown';
  readonly resource: string;
}

/** The kinds of lease: `LockService` (plain, `fair`, read locks), `SemaphoreService`. */
export type LeaseKind = 'lock' | 'fair-lock' | 'read-lock' | 'semaphore';

/**
 * One `CacheAsideService.getOrLoad` ended: `hit` (cached), `miss-loaded` (this call ran the loader),
 * `waited` (it waited for another caller's load and got its value), `timeout` (the wait ran out),
 * `error` (the loader or Redis failed). Metric `nest_redis_lua.cache.requests` (attribute `outcome`).
 */
export interface CacheRequestEvent {
  readonly type: 'cache.request';
  readonly outcome: 'hit' | 'miss-loaded' | 'waited' | 'timeout' | 'error';
  readonly key: string;
}

/** A bounded counter refused a change (`applied: false`). Metric `nest_redis_lua.counter.rejections` (attribute `operation`). */
export interface CounterRejectionEvent {
  readonly type: 'counter.rejection';
  readonly operation: 'increment' | 'decrement';
  readonly key: string;
}

/**
 * A leaderboard submit: `best` (the member's score improved or it entered the board), `not-best`,
 * `off-board` (not on the board after it: trimmed off). Metric `nest_redis_lua.leaderboard.submissions`
 * (attribute `outcome`).
 */
export interface LeaderboardSubmissionEvent {
  readonly type: 'leaderboard.submission';
  readonly outcome: 'best' | 'not-best' | 'off-board';
  readonly board: string;
}

/**
 * One script call answered (`ok`) or failed (`error`: the script raised, or Redis could not
 * answer); a call sent again after a missing script is timed from its resend. Metric
 * `nest_redis_lua.script.duration` (ms; attributes `script`, and `error.type` when it failed).
 */
export interface ScriptCallEvent {
  readonly type: 'script.call';
  /** The registered name, e.g. `rate-limit/sliding-log` or a `forFeature` name. */
  readonly script: string;
  readonly outcome: 'ok' | 'error';
  /** A failure's kind: the Redis error code (`ERR`, `OOM`, `BUSY`...) or the error's class name; absent when `ok`. */
  readonly errorType?: string;
  readonly durationMs: number;
}

/**
 * A server lacked a script, so the call was sent again: `NOSCRIPT` (EVAL of its body) or `missing
 * function` (functions mode: the library loaded, then FCALL again). Metric `nest_redis_lua.script.reloads`
 * (attributes `script`, `reason`).
 */
export interface ScriptReloadEvent {
  readonly type: 'script.reload';
  readonly script: string;
  readonly reason: 'NOSCRIPT' | 'missing function';
}

/**
 * A call failed because Redis could not answer it (a `RedisLuaUnavailableError`). `operation` is the
 * script (`script "lock/acquire"`) or the method (`RateLimiterService.reset`). Metric
 * `nest_redis_lua.connection.unavailable` (attributes `reason`, `operation`).
 */
export interface ConnectionUnavailableEvent {
  readonly type: 'connection.unavailable';
  readonly reason: RedisLuaUnavailableReason;
  readonly operation: string;
  /** The first word of Redis's error reply (`OOM`, `BUSY`, ...) when `reason` is `refused`. */
  readonly redisCode?: string;
}

/** `forRoot({ onEvent })`: called synchronously with every event; what it throws is logged once and ignored. */
export type RedisLuaEventListener = (event: RedisLuaEvent) => void;

/** `errorType` of a failure: a Redis error reply's code (`NOSCRIPT`, `OOM`...), or the error's class name. @internal */
export function errorType(error: unknown): string {
  if (!(error instanceof Error)) return typeof error;
  return /^([A-Z][A-Z_]+) /.exec(error.message)?.[1] ?? error.name;
}
