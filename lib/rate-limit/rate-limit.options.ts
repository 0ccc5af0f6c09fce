import type { RedisLuaUnavailableError } from '../core/errors';
import type { ExecutionContext } from '@nestjs/common';

/**
 * How a rule counts:
 * - `sliding-log` (default): exact. Every admitted hit of the last window is logged; a hit is admitted
 *   when fewer than `limit` hits were admitted in the last `windowMs`. Memory grows with `limit`.
 * - `sliding-window`: two fixed buckets, the previous one weighted by how much of it still overlaps the
 *   window. O(1) memory; never admits more than the weighted estimate allows.
 * - `token-bucket`: GCRA. Bursts of up to `limit`, refilled at `limit` per `windowMs`. O(1) memory.
 * - `fixed-window`: a counter that starts at the first admitted hit and resets `windowMs` later. O(1).
 */
export type RateLimitAlgorithm = 'sliding-log' | 'sliding-window' | 'token-bucket' | 'fixed-window';

/** Every algorithm, with the one-letter code its Lua implementation is registered under. */
export const RATE_LIMIT_ALGORITHMS: Readonly<Record<RateLimitAlgorithm, string>> = {
  'sliding-log': 'l',
  'sliding-window': 's',
  'token-bucket': 't',
  'fixed-window': 'f',
};

/** The default algorithm. */
export const DEFAULT_RATE_LIMIT_ALGORITHM: RateLimitAlgorithm = 'sliding-log';

/**
 * What happens when Redis is down or slower than `timeoutMs`: admit (`open`), refuse (`closed`), or
 * limit in this process's memory with the same rules (`local`; see `localLimitFactor`).
 */
export type RateLimitFailMode = 'open' | 'closed' | 'local';

/** One limit: at most `limit` units per `windowMs`. */
export interface RateLimitRule {
  /** Units (requests, unless a cost is given) admitted per window: an integer >= 1. */
  limit: number;
  /** The window in milliseconds: an integer >= 1. */
  windowMs: number;
  /** Default `sliding-log`. */
  algorithm?: RateLimitAlgorithm;
  /** Shown in headers and 429 bodies (default `default` for one rule, `rule<n>` for several). */
  name?: string;
  /**
   * A penalty: when this rule denies a consume, the identifier stays denied by it for `blockMs` from
   * that denial (integer ms >= 1), even once the window would admit again; `retryAfterMs` and
   * `Retry-After` say so, and the local deny cache keeps the denial as long. `reset` lifts it.
   */
  blockMs?: number;
}

/** A value given directly or computed from the request (e.g. a limit by subscription tier). */
export type ContextValue<T> = T | ((context: ExecutionContext) => T | Promise<T>);

/** A rule of `@RateLimit`: like {@link RateLimitRule}, but `limit` may depend on the request. */
export interface RateLimitRouteRule extends Omit<RateLimitRule, 'limit'> {
  /** A number, or a function of the execution context returning one (tiers). */
  limit: ContextValue<number>;
}

/** Options of `@RateLimit(...)` beyond the rule itself. */
export interface RateLimitRouteOptions extends Partial<RateLimitRouteRule> {
  /** Several rules checked and recorded atomically (all or nothing); replaces limit/windowMs/algorithm. */
  rules?: RateLimitRouteRule[];
  /**
   * Who is limited. Default: the client IP (`req.ip`, IPv6 masked to /64). The route (HTTP method and
   * route path) is always added, so each route has its own buckets. Required outside HTTP (checked
   * at boot). It must return a non-empty string or a finite number: anything else (`undefined` for a
   * missing header, say) fails the request with a {@link RateLimitInputError} naming the route and
   * records nothing, so that requests without an identity never share a bucket.
   */
  key?: (context: ExecutionContext) => string | number | Promise<string | number>;
  /** Units one request takes (default 1). */
  cost?: ContextValue<number>;
  /** Overrides the module's `failMode` for this route. */
  failMode?: RateLimitFailMode;
  /** Overrides the module's `timeoutMs` for this route. */
  timeoutMs?: number;
  /**
   * Let {@link RateLimitMiddleware} answer a client this route has denied with the same 429 before
   * Nest routes its next requests, until it may pass again (default `false`). Only for a `key` that
   * comes from the request as it arrives (the client IP, a header): the middleware runs before any
   * guard. Needs the middleware applied to the route (checked on each request) and a constant `cost`.
   */
  earlyDeny?: boolean;
  /**
   * Count only some requests (HTTP routes; checked at boot): `'failed'` only those answered with a
   * status >= 400 (thrown errors included: a login route that counts wrong passwords), `'succeeded'`
   * only those answered < 400. Every request is checked and counted as usual, then given back with
   * `refund` once its response ends without the status that counts, or when the client disconnects
   * before the response. While such requests are in flight they count.
   */
  countOnly?: 'failed' | 'succeeded';
  /**
   * Exempts a request before anything is checked or recorded when it returns true (no headers, no
   * Redis call): an internal caller, a health probe. A throwing or rejecting `skip` fails the request.
   */
  skip?: (context: ExecutionContext) => boolean | Promise<boolean>;
}

/** Options of one {@link RateLimiterService.consume} (or `peek`) call. */
export interface ConsumeOptions {
  /** Units this hit takes (integer >= 1, at most the smallest limit; default 1). */
  cost?: number;
  /** Overrides the module's `failMode`. */
  failMode?: RateLimitFailMode;
  /** Overrides the module's `timeoutMs`. */
  timeoutMs?: number;
  /**
   * `consume` and `reserve`: when the hit does not fit now, wait up to this long (integer ms, at most
   * an hour; default 0) instead of being denied. Redis records the hit at the earliest time it fits,
   * after every hit recorded so far (so waiters on every instance are admitted in arrival order, at
   * the rate: none starves), and the call sleeps until then, with no polling. A hit that cannot fit
   * within `waitMs` is denied at once; a live `blockMs` block or ban is not waited out. Only for
   * `sliding-log` and `token-bucket` rules (an O(1) window counter cannot hold a hit of a later
   * window). Redis unavailable: the fail mode decides at once, without waiting.
   */
  waitMs?: number;
  /**
   * What the decision is reported under (the `route` of `rate_limit.decision` events and the metric
   * attribute; see `forRoot({ onEvent })` and the README's "Observability"): a name of bounded
   * cardinality such as `POST /login` or `partner-api`, never an identifier. `@RateLimit` routes
   * report their route (`GET /users/:id`) themselves. Non-empty text, at most 200 characters.
   */
  route?: string;
}

/** Which headers the guard writes. */
export interface RateLimitHeaderOptions {
  /** `RateLimit-Policy` and `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers). Default true. */
  ietf?: boolean;
  /** `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds). Default false. */
  legacy?: boolean;
}

/** Reported to {@link RateLimitModuleOptions.onUnavailable} each time Redis could not decide a hit. */
export interface RateLimitUnavailableEvent {
  /** What Redis did (unreachable, no reply within `timeoutMs`, refused: see its `reason`); the ioredis error is its `cause`. */
  error: RedisLuaUnavailableError;
  /** The identifier whose hit was decided without Redis. */
  key: string;
  /** How it was decided. */
  failMode: RateLimitFailMode;
}

/** `forRoot({ rateLimit: { ... } })`: defaults of the service and of every `@RateLimit` route. */
export interface RateLimitModuleOptions {
  /** Default limit of routes that give none; with `windowMs`, also limits every route under an APP_GUARD. */
  limit?: number;
  /** Default window of routes that give none. */
  windowMs?: number;
  /** Default algorithm (default `sliding-log`). */
  algorithm?: RateLimitAlgorithm;
  /**
   * When Redis is down or slow: `open` admits (default), `closed` refuses (the guard answers 503),
   * `local` limits in each process's memory with the same rules until Redis answers again (results
   * marked `degraded`; the guard answers 429 for a local denial).
   */
  failMode?: RateLimitFailMode;
  /**
   * `failMode: 'local'`: each process admits `limit * localLimitFactor` (at least 1) per window while
   * Redis is unavailable, since N processes limit separately (N × the limit in all). Default 1; a
   * number in (0, 1], typically 1 / the number of instances.
   */
  localLimitFactor?: number;
  /** How long a hit may wait for Redis before the fail mode decides it (default 250 ms). */
  timeoutMs?: number;
  /** Which headers the guard writes. */
  headers?: RateLimitHeaderOptions;
  /**
   * Size of the per-process cache of denied identifiers (default 10000, 0 disables it). A hit on an
   * identifier known to be denied until T is denied without a round trip until T.
   */
  localCacheSize?: number;
  /** Called (errors ignored) each time a hit is decided without Redis. A warning is logged once per outage. */
  onUnavailable?: (event: RateLimitUnavailableEvent) => void;
  /**
   * The guard's default key groups IPv6 clients by this prefix length (default 64, 1-128): a whole
   * /64 is one client, as it usually belongs to one customer. IPv4 addresses, in any IPv4-mapped
   * IPv6 spelling too, are one client each.
   */
  ipv6Subnet?: number;
  /**
   * Manual bans (`block`, `unblock`, `isBlocked`): every consume and peek then also checks its
   * identifier's ban key, in the same script (one more key per call). Default false: the ban
   * methods then refuse to run, since no limit would check their bans.
   */
  bans?: boolean;
}

/** The outcome of a rate-limit check, describing the tightest rule. */
export interface RateLimitResult {
  /** True if the hit was admitted (by every rule). */
  allowed: boolean;
  /** The tightest rule's limit. */
  limit: number;
  /** Units still available under the tightest rule (after this hit, when it was admitted). */
  remaining: number;
  /** Milliseconds until the tightest rule's quota is fully restored. */
  resetMs: number;
  /** Milliseconds until this hit could be admitted (0 when allowed). */
  retryAfterMs: number;
  /**
   * The tightest rule: when denied, the denying rule that frees last; otherwise the one with the
   * fewest units left. Frozen: results of the same rules share it.
   */
  readonly rule: Readonly<{ name: string; limit: number; windowMs: number; algorithm: string }>;
  /** With `waitMs`: the milliseconds this call waited for its admission (absent when it did not wait). */
  waitedMs?: number;
  /** Present when the identifier's manual ban (`RateLimiterService.block`) denied the hit, not a rule. */
  readonly ban?: Readonly<{ reason?: string }>;
  /**
   * True if Redis could not decide and the fail mode did (`open`: admitted without counting; `local`:
   * decided by this process's in-memory limiter, which may also deny).
   */
  degraded?: boolean;
}

/** Defaults. */
export const DEFAULT_RATE_LIMIT_TIMEOUT_MS = 250;
export const DEFAULT_LOCAL_CACHE_SIZE = 10_000;

/** The largest limit or cost accepted (keeps every computation in exact integer range). */
export const MAX_RATE_LIMIT = 1_000_000;
/** The longest `waitMs` accepted: an hour. */
export const MAX_RATE_LIMIT_WAIT_MS = 3_600_000;
/** The longest window accepted: 30 days. */
export const MAX_WINDOW_MS = 30 * 24 * 3600 * 1000;

/** A rule with every field resolved. */
export interface ResolvedRateLimitRule {
  readonly limit: number;
  readonly windowMs: number;
  readonly algorithm: RateLimitAlgorithm;
  readonly name: string;
  /** Absent when the rule has no block. */
  readonly blockMs?: number;
}
