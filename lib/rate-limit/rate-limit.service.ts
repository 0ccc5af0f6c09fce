import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { checkInteger } from '../core/validation';
import { REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import type { KeyBuilder } from '../scripts/key-builder';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { RateLimitBans, type RateLimitBanStatus } from './bans';
import { EarlyDenials } from './early-denials';
import { limiterSite, RateLimitChecks, type Plan } from './rate-limit.checks';
import {
  DEFAULT_LOCAL_CACHE_SIZE,
  MAX_RATE_LIMIT,
  type ConsumeOptions,
  type RateLimitModuleOptions,
  type RateLimitResult,
  type RateLimitRule,
} from './rate-limit.options';
import { RateLimitReservation } from './reservation';
import { identifierOf } from './rule-plan';

const SITES = { c: limiterSite('consume'), p: limiterSite('peek') } as const;
const RESET = limiterSite('reset');
const REFUND = limiterSite('refund');
const RESERVE = limiterSite('reserve');
const BLOCK = limiterSite('block');
const UNBLOCK = limiterSite('unblock');
const IS_BLOCKED = limiterSite('isBlocked');
/** ARGV[1] of a refund or charge: not bounded by a deadline (an adjustment is never a decision a fail mode made). */
const NO_DEADLINE = String(Number.MAX_SAFE_INTEGER);

/**
 * Exact, atomic rate limiting in one round trip: every rule of a call is checked, then the hit is
 * recorded in all of them or in none, by one Lua script on the Redis server (time from Redis `TIME`,
 * so client clocks do not matter). All keys of one identifier share one hash tag (one cluster slot).
 *
 * ```ts
 * const result = await limiter.consume(`user:${id}`, [{ limit: 10, windowMs: 1000 }, { limit: 1000, windowMs: 3_600_000 }]);
 * if (!result.allowed) throw new HttpException('slow down', 429);
 * ```
 */
@Injectable()
export class RateLimiterService implements OnModuleInit, OnModuleDestroy {
  /** Module-level rate-limit options (validated at boot with the connection options). */
  readonly options: RateLimitModuleOptions;
  /** Consume and peek: plans, deny cache, deadlines, fail modes (see {@link RateLimitChecks}). */
  private readonly checks: RateLimitChecks;
  private readonly bans: RateLimitBans;
  /** Denials of `earlyDeny` routes that RateLimitMiddleware answers before routing. @internal */
  readonly earlyDenials: EarlyDenials;
  private readonly lazyConnect: boolean;
  /** Decisions are reported (`onEvent`, OpenTelemetry metrics): the guard then gives each consume its route. @internal */
  readonly reportsDecisions: boolean;

  constructor(
    private readonly engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
    @Inject(REDIS_LUA_OPTIONS) moduleOptions: RedisLuaModuleOptions,
  ) {
    this.options = moduleOptions.rateLimit ?? {};
    const bansOn = this.options.bans === true;
    this.bans = new RateLimitBans(engine, keys, bansOn);
    this.checks = new RateLimitChecks(engine, keys, this.options, new Logger('RateLimit'), bansOn ? this.bans.keyOf : undefined);
    this.reportsDecisions = engine.telemetry?.recording === true;
    this.earlyDenials = new EarlyDenials(
      this.options.localCacheSize ?? DEFAULT_LOCAL_CACHE_SIZE,
      this.reportsDecisions ? (result, key, route) => this.checks.report(result, key, { route }) : undefined,
    );
    this.lazyConnect = moduleOptions.lazyConnect === true;
  }

  /**
   * Records a hit of `cost` units for `key` if every rule admits it (otherwise records nothing).
   * The result describes the tightest rule. When Redis is down or slower than `timeoutMs`, `failMode`
   * decides: `open` returns an admitted result marked `degraded`, `closed` throws
   * {@link RateLimitUnavailableError}. A call Redis runs after its `timeoutMs` (a frozen server
   * resuming) records nothing, whichever fail mode answered it. With `waitMs`, a hit that does not
   * fit now is recorded at the earliest time it fits (if within `waitMs`) and the call resolves then.
   * @throws RateLimitInputError for an empty key, bad rules, a bad cost or `waitMs` (or `waitMs` with
   *   rules other than sliding-log and token-bucket), before any Redis call.
   * @throws RateLimitUnavailableError with `failMode: 'closed'` when Redis is unreachable, slower than
   *   `timeoutMs` or refuses the call (a {@link RedisLuaUnavailableError}).
   * @example
   * const result = await limiter.consume(`login:${ip}`, { limit: 5, windowMs: 60_000 });
   * if (!result.allowed) throw new HttpException('Too many attempts', 429);
   * // outbound: wait up to 2 s for a slot of a partner's 5 per second
   * await limiter.consume('partner-api', { limit: 5, windowMs: 1_000 }, { waitMs: 2_000 });
   */
  consume(key: string, rules: RateLimitRule | readonly RateLimitRule[], options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.checks.check('c', key, rules, options, SITES.c);
  }

  /**
   * What `consume` would answer, recording nothing.
   * @throws RateLimitInputError for an empty key, bad rules or a bad cost (before any Redis call).
   * @throws RateLimitUnavailableError with `failMode: 'closed'`, as `consume`.
   * @example
   * const { remaining } = await limiter.peek(`login:${ip}`, { limit: 5, windowMs: 60_000 });
   */
  peek(key: string, rules: RateLimitRule | readonly RateLimitRule[], options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.checks.check('p', key, rules, options, SITES.p);
  }

  /**
   * Takes `cost` units now, like `consume` (all rules or none), for a call whose real cost is known
   * only later (tokens of a model's answer, bytes of an export): settle the returned reservation with
   * `commit(actualCost)` (charges more or gives the difference back) or `cancel()` (gives all back).
   * A reservation never settled stays charged. When it was denied (`allowed` false) nothing was taken.
   * @throws RateLimitInputError for an empty key, bad rules or a bad cost (before any Redis call).
   * @throws RateLimitUnavailableError with `failMode: 'closed'`, as `consume` (with `open` or `local`,
   *   a `degraded` reservation: nothing was taken in Redis, and settling it costs no Redis call).
   * @example
   * const reservation = await limiter.reserve(`tokens:${user}`, { limit: 100_000, windowMs: 60_000 }, { cost: 4000 });
   * if (!reservation.allowed) throw new HttpException('Token budget exhausted', 429);
   * await reservation.commit(usedTokens);
   */
  async reserve(key: string, rules: RateLimitRule | readonly RateLimitRule[], options?: ConsumeOptions): Promise<RateLimitReservation> {
    const result = await this.checks.check('c', key, rules, options, RESERVE);
    const plan = this.checks.plan(key, rules, RESERVE);
    return new RateLimitReservation(result, options?.cost ?? 1, (op, cost) => this.adjust(op, key, plan, cost));
  }

  /**
   * Gives `cost` units back to every rule of a call (the most recent hits of a sliding log; the
   * counters of the other algorithms), never below empty: a request that should not have counted
   * (a later step failed, the client gave up). A sliding window gives back from its current bucket
   * first; a hit of the previous bucket counts only by its weight, so it frees less than a whole
   * unit. A rule's `blockMs` penalty is not lifted (`reset` lifts it). This process's cached denials
   * of `key` are dropped.
   * @throws RateLimitInputError for an empty key, bad rules, or a cost that is not an integer between 1 and 1000000.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`
   *   (then the refund may or may not have been applied), or refuses the call.
   * @example
   * const uploads = { limit: 10, windowMs: 60_000 };
   * if (!(await limiter.consume(`upload:${user}`, uploads)).allowed) throw new HttpException('Too many uploads', 429);
   * if (!(await storage.save(file))) await limiter.refund(`upload:${user}`, uploads); // a failed upload does not count
   */
  async refund(key: string, rules: RateLimitRule | readonly RateLimitRule[], cost = 1): Promise<void> {
    const plan = this.checks.plan(key, rules, REFUND);
    checkInteger(cost, 'cost', REFUND, 1, MAX_RATE_LIMIT, 'argument');
    await this.adjust('r', key, plan, cost);
  }

  /** A refund (`r`) or an extra charge (`g`) of `cost` units in every rule of `plan` (lua/includes/rate-limit-driver.lua). */
  private async adjust(op: 'r' | 'g', key: string, plan: Plan, cost: number): Promise<void> {
    if (op === 'r') this.forgetDenials(key);
    await plan.script.run(
      plan.keyOf.map((keyOf) => keyOf(key)),
      [NO_DEADLINE, op, String(cost), ...plan.ruleArgs],
    );
  }

  /** Drops this process's cached denials of an identifier (local deny cache and early denials). */
  private forgetDenials(key: string): void {
    // Every deny-cache entry of this identifier, whatever its rules: all its Redis keys carry its hash
    // tag, and no other identifier's keys can contain it (encoded parts never contain braces).
    const identifier = identifierOf(key);
    this.checks.denied.deleteContaining(this.keys.tag([identifier]));
    this.earlyDenials.forget(identifier);
  }

  /**
   * Forgets every hit of `key` under `rules` in Redis, and every local denial of `key` in this
   * process's deny cache (other processes see the reset once their cached denial runs out).
   * @throws RateLimitInputError for an empty key or bad rules.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * await limiter.reset(`login:${ip}`, { limit: 5, windowMs: 60_000 }); // after a successful login
   */
  async reset(key: string, rules: RateLimitRule | readonly RateLimitRule[]): Promise<void> {
    const plan = this.checks.plan(key, rules, RESET);
    const redisKeys = plan.keyOf.map((keyOf) => keyOf(key));
    // The rules' blocks too (whether or not these rules give blockMs: an earlier call's may have).
    for (const keyOf of plan.blockKeys) redisKeys.push(keyOf(key));
    this.forgetDenials(key);
    await this.engine.command('RateLimiterService.reset', (client) => client.del(...redisKeys));
  }

  /**
   * Bans an identifier for `durationMs` on every instance (`forRoot({ rateLimit: { bans: true } })`):
   * every consume and peek of `key`, and of every scoped key `key\n...` (the guard's keys of that
   * client on every route), is denied until then, whatever its rules, with `retryAfterMs` (and the
   * guard's 429 `Retry-After`) the time left and `result.ban` set. Replaces an earlier ban of `key`.
   * `reason` (at most 512 bytes) is kept for {@link isBlocked}; the 429 does not show it.
   * @throws RateLimitInputError when bans are off, for an empty key or one with a line break, a
   *   duration that is not an integer between 1 ms and 365 days, or a reason that is not text of at most 512 bytes.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call.
   * @example
   * await limiter.block(`user:${id}`, 24 * 3_600_000, 'card testing');
   */
  block(key: string, durationMs: number, reason?: string): Promise<void> {
    return this.bans.block(key, durationMs, reason, BLOCK);
  }

  /**
   * Lifts the ban of an identifier; resolves true if there was one. This process forgets its cached
   * denials of `key` at once, other instances within a second.
   * @throws RateLimitInputError when bans are off, for an empty key or one with a line break.
   * @throws RedisLuaUnavailableError as {@link block}.
   * @example
   * const lifted = await limiter.unblock(`user:${id}`);
   */
  async unblock(key: string): Promise<boolean> {
    const lifted = await this.bans.unblock(key, UNBLOCK);
    this.forgetDenials(key);
    return lifted;
  }

  /**
   * Whether an identifier is banned, for how long, and why.
   * @throws RateLimitInputError when bans are off, for an empty key or one with a line break.
   * @throws RedisLuaUnavailableError as {@link block}.
   * @example
   * const { blocked, retryAfterMs, reason } = await limiter.isBlocked(`user:${id}`);
   */
  isBlocked(key: string): Promise<RateLimitBanStatus> {
    return this.bans.status(key, IS_BLOCKED);
  }

  /** Learns the servers' clock offset before the app serves (not with `lazyConnect`: boot does not touch Redis). */
  async onModuleInit(): Promise<void> {
    if (!this.lazyConnect) await this.checks.clock.measure();
  }

  /** Stops measuring the servers' clock. */
  onModuleDestroy(): void {
    this.checks.clock.stop();
  }
}
