import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { describeValue } from '../core/messages';
import { checkInteger, checkText, fail, inputSite, type InputSite } from '../core/validation';
import { REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { RedisLuaUnavailableError } from '../core/errors';
import { LuaScriptError, unavailableMessage } from '../scripts/lua-script.errors';
import { CheckCall, delayOf, lateError, resultOf, RL_LATE, type ScriptReply } from './rate-limit.call';
import { ServerClock } from './server-clock';
import { FailModes } from './fail-mode';
import { LocalLimiter } from './local-limiter';
import { EarlyDenials } from './early-denials';
import { RateLimitInputError } from './rate-limit.errors';
import { LocalDenyCache } from './local-deny-cache';
import { DeadlineSweeper } from './deadlines';
import {
  DEFAULT_LOCAL_CACHE_SIZE,
  DEFAULT_RATE_LIMIT_TIMEOUT_MS,
  type ConsumeOptions,
  type RateLimitFailMode,
  type RateLimitModuleOptions,
  type RateLimitResult,
  type RateLimitRule,
  MAX_RATE_LIMIT,
  MAX_RATE_LIMIT_WAIT_MS,
} from './rate-limit.options';
import { checkFailMode, checkTimeout } from './rate-limit.rules';
import { RateLimitReservation } from './reservation';
import { identifierOf, RulePlans, type RulePlan } from './rule-plan';
import { BAN_CACHE_MS, RateLimitBans, type RateLimitBanStatus } from './bans';

type Plan = RulePlan<LuaScript<ScriptReply>>;

const site = (method: string): InputSite => inputSite(`RateLimiterService.${method}`, RateLimitInputError);
const SITES = { c: site('consume'), p: site('peek') } as const;
const RESET = site('reset');
const REFUND = site('refund');
const RESERVE = site('reserve');
const BLOCK = site('block');
const UNBLOCK = site('unblock');
const IS_BLOCKED = site('isBlocked');
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
  private readonly logger = new Logger('RateLimit');
  private readonly denied: LocalDenyCache<RateLimitResult>;
  /** Module-level rate-limit options (validated at boot with the connection options). */
  readonly options: RateLimitModuleOptions;
  private readonly failModes: FailModes;
  /** The in-memory limiter of `failMode: 'local'`. */
  private readonly local: LocalLimiter;
  /** Resolved rules per rules object (a route's or a caller's constant): validated once, not per call. */
  private readonly plans: RulePlans<LuaScript<ScriptReply>>;
  private readonly deadlines = new DeadlineSweeper();
  private readonly bans: RateLimitBans;
  /** Each identifier's ban key, when `rateLimit.bans` is on (every consume and peek then checks it). */
  private readonly banKeyOf?: (identifier: string) => string;
  private readonly clock: ServerClock;
  /** Denials of `earlyDeny` routes that RateLimitMiddleware answers before routing. @internal */
  readonly earlyDenials: EarlyDenials;
  private readonly lazyConnect: boolean;
  /** The module's failMode and timeoutMs, or the error a call without its own options reports. */
  private readonly defaultFailMode: RateLimitFailMode;
  private readonly defaultTimeoutMs: number;
  private readonly defaultsError?: string;

  constructor(
    private readonly engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
    @Inject(REDIS_LUA_OPTIONS) moduleOptions: RedisLuaModuleOptions,
  ) {
    this.options = moduleOptions.rateLimit ?? {};
    this.failModes = new FailModes(this.logger, this.options);
    this.local = new LocalLimiter(this.options.localCacheSize || DEFAULT_LOCAL_CACHE_SIZE, this.options.localLimitFactor ?? 1);
    this.denied = new LocalDenyCache(this.options.localCacheSize ?? DEFAULT_LOCAL_CACHE_SIZE);
    this.earlyDenials = new EarlyDenials(this.options.localCacheSize ?? DEFAULT_LOCAL_CACHE_SIZE);
    const scripts = {
      'sliding-log': engine.bundled<ScriptReply>('rate-limit/sliding-log'),
      'sliding-window': engine.bundled<ScriptReply>('rate-limit/sliding-window'),
      'token-bucket': engine.bundled<ScriptReply>('rate-limit/token-bucket'),
      'fixed-window': engine.bundled<ScriptReply>('rate-limit/fixed-window'),
      mixed: engine.bundled<ScriptReply>('rate-limit/mixed'),
    };
    this.plans = new RulePlans(scripts, keys, this.options);
    this.bans = new RateLimitBans(engine, keys, this.options.bans === true);
    if (this.options.bans === true) this.banKeyOf = this.bans.keyOf;
    this.clock = new ServerClock(engine.client);
    this.lazyConnect = moduleOptions.lazyConnect === true;
    this.defaultFailMode = this.options.failMode ?? 'open';
    this.defaultTimeoutMs = this.options.timeoutMs ?? DEFAULT_RATE_LIMIT_TIMEOUT_MS;
    try {
      this.checkCallOptions(this.defaultFailMode, this.defaultTimeoutMs, SITES.c);
    } catch (err) {
      this.defaultsError = (err as Error).message;
    }
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
    return this.check('c', key, rules, options);
  }

  /**
   * What `consume` would answer, recording nothing.
   * @throws RateLimitInputError for an empty key, bad rules or a bad cost (before any Redis call).
   * @throws RateLimitUnavailableError with `failMode: 'closed'`, as `consume`.
   * @example
   * const { remaining } = await limiter.peek(`login:${ip}`, { limit: 5, windowMs: 60_000 });
   */
  peek(key: string, rules: RateLimitRule | readonly RateLimitRule[], options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.check('p', key, rules, options);
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
    const result = await this.check('c', key, rules, options, RESERVE);
    const plan = this.plan(key, rules, RESERVE);
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
    const plan = this.plan(key, rules, REFUND);
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
    this.denied.deleteContaining(this.keys.tag([identifier]));
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
    const plan = this.plan(key, rules, RESET);
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
    if (!this.lazyConnect) await this.clock.measure();
  }

  /** Stops measuring the servers' clock. */
  onModuleDestroy(): void {
    this.clock.stop();
  }

  /**
   * One check. Not an `async` function: the common path allocates the EVALSHA promise, its `then`
   * and the returned promise, nothing more (each layer of async/await cost measurable client CPU).
   * Never throws synchronously: every error is a rejection.
   */
  private check(
    op: 'c' | 'p',
    key: string,
    rules: RateLimitRule | readonly RateLimitRule[],
    options: ConsumeOptions | undefined,
    site: InputSite = SITES[op],
  ): Promise<RateLimitResult> {
    let plan: Plan;
    let failMode = this.defaultFailMode;
    let timeoutMs = this.defaultTimeoutMs;
    const cost = options?.cost ?? 1;
    const waitMs = options?.waitMs;
    try {
      plan = this.plan(key, rules, site);
      if (cost !== 1 && (!Number.isInteger(cost) || cost < 1 || cost > plan.smallestLimit)) {
        fail(site, 'cost', `cost must be an integer between 1 and the smallest limit (${plan.smallestLimit}), got ${describeValue(cost)}`);
      }
      if (waitMs !== undefined) this.checkWait(op, plan, waitMs, site);
      if (options?.failMode !== undefined || options?.timeoutMs !== undefined) {
        failMode = options.failMode ?? failMode;
        timeoutMs = options.timeoutMs ?? timeoutMs;
        // Per-call options, checked before any Redis call (a NaN timeout would decide at once).
        this.checkCallOptions(failMode, timeoutMs, site);
      } else if (this.defaultsError !== undefined) {
        throw new RateLimitInputError(this.defaultsError);
      }
    } catch (err) {
      return Promise.reject(err);
    }

    const { keyOf, blocks } = plan;
    const redisKeys = keyOf.length === 1 ? [keyOf[0](key)] : keyOf.map((f) => f(key));
    if (blocks) for (const f of blocks.keyOf) redisKeys.push(f(key));
    const { banKeyOf } = this;
    if (banKeyOf) redisKeys.push(banKeyOf(identifierOf(key)));
    // The deny cache's key; not built while the cache is empty (the common case: nobody is over a limit).
    let cacheKey: string | undefined;
    // A waiting call is not answered from the deny cache (it may wait), nor remembered there.
    const waiting = waitMs !== undefined && waitMs > 0;
    if (this.denied.size > 0 && !waiting) {
      cacheKey = `${redisKeys.length === 1 ? redisKeys[0] : redisKeys.join(' ')} ${cost}`;
      const cached = this.denied.get(cacheKey);
      if (cached) return Promise.resolve({ ...cached.value, retryAfterMs: Math.ceil(cached.leftMs) });
    }

    const { status } = this.engine.client;
    // 'wait': a lazyConnect client that connects on its first command. Otherwise the call would wait
    // in the offline queue: decided by the fail mode at once instead.
    if (status !== 'ready' && status !== 'wait') {
      const down = new RedisLuaUnavailableError(unavailableMessage('', `the connection is ${status}`), 'unreachable');
      return this.failModes.settle(down, key, failMode, plan.rules[0], () => this.decideLocally(op, plan, redisKeys, cost));
    }
    const sentAt = performance.now();
    // ARGV[1]: the deadline on Redis's clock; a script that runs later records nothing (see ServerClock).
    const deadline = this.clock.deadline(timeoutMs);
    const { consumeArgs: c } = plan;
    // With bans, the full form's op is upper case: its last key is the ban key (lua/includes/rate-limit-ban.lua).
    const fullOp = waiting ? `${banKeyOf ? 'W' : 'w'}${waitMs}` : banKeyOf ? (op === 'c' ? 'C' : 'P') : op;
    const args =
      c !== undefined && op === 'c' && !waiting
        ? cost === 1
          ? [deadline, c[0], c[1]]
          : [deadline, c[0], c[1], String(cost)]
        : blocks
          ? [deadline, fullOp, String(cost), ...plan.ruleArgs, ...blocks.args]
          : [deadline, fullOp, String(cost), ...plan.ruleArgs];
    const call = new CheckCall(sentAt + timeoutMs, timeoutMs, plan.script.send(redisKeys, args));
    // Time-outs share one timer per timeout value (see DeadlineSweeper), not one timer per call.
    this.deadlines.watch(timeoutMs, call);
    const onReply = (reply: ScriptReply): RateLimitResult | Promise<RateLimitResult> => {
      this.deadlines.release(call);
      if (reply === RL_LATE) {
        return this.failModes.settle(lateError(timeoutMs), key, failMode, plan.rules[0], () =>
          this.decideLocally(op, plan, redisKeys, cost),
        );
      }
      this.failModes.answered();
      if (waiting) return this.waited(reply, plan);
      return this.result(reply, plan, op, sentAt, redisKeys, cost, cacheKey);
    };
    const onError = (err: unknown): Promise<RateLimitResult> => {
      // NOSCRIPT: the script did not run; its body (EVAL) goes out once, under the same deadline.
      const retry = call.recovering ? undefined : plan.script.resendAfterNoScript(err, redisKeys, args);
      if (retry) {
        call.recovering = true;
        call.command = retry;
        return (retry.promise as Promise<ScriptReply>).then(onReply, onError);
      }
      this.deadlines.release(call);
      const failure = plan.script.scriptError(err);
      if (failure instanceof LuaScriptError) return Promise.reject(failure);
      return this.failModes.settle(failure, key, failMode, plan.rules[0], () => this.decideLocally(op, plan, redisKeys, cost));
    };
    // A reply that comes after the deadline finds its command already rejected: ignored by ioredis.
    return (call.command.promise as Promise<ScriptReply>).then(onReply, onError);
  }

  /** `failMode: 'local'`: this process's in-memory decision, on the rules' keys (block keys aside). */
  private decideLocally(op: 'c' | 'p', plan: Plan, redisKeys: readonly string[], cost: number): RateLimitResult {
    return this.local.decide(op, redisKeys, plan.rules, plan.publicRules, cost);
  }

  /** The result of a reply; a denied consume is remembered in the deny cache until it may pass. */
  private result(
    reply: ScriptReply,
    plan: Plan,
    op: 'c' | 'p',
    sentAt: number,
    redisKeys: readonly string[],
    cost: number,
    cacheKey: string | undefined,
  ): RateLimitResult {
    const result = resultOf(reply, plan);
    if (!result.allowed && op === 'c') {
      const denyKey = cacheKey ?? `${redisKeys.length === 1 ? redisKeys[0] : redisKeys.join(' ')} ${cost}`;
      // A ban's denial for a second at most: an unblock on another instance then reaches this one.
      const forMs = result.ban ? Math.min(result.retryAfterMs, BAN_CACHE_MS) : result.retryAfterMs;
      this.denied.set(denyKey, sentAt + forMs - performance.now(), result);
    }
    return result;
  }

  /** The result of a waiting consume's reply, once its delay has passed (see `waitMs`). */
  private waited(reply: ScriptReply, plan: Plan): RateLimitResult | Promise<RateLimitResult> {
    const result = resultOf(reply, plan);
    const delay = delayOf(reply);
    if (delay === 0) return result;
    return new Promise((resolve) => setTimeout(() => resolve({ ...result, waitedMs: delay }), delay));
  }

  /** Throws {@link RateLimitInputError} unless `waitMs` is valid for this call. */
  private checkWait(op: 'c' | 'p', plan: Plan, waitMs: number, site: InputSite): void {
    checkInteger(waitMs, 'waitMs', site, 0, MAX_RATE_LIMIT_WAIT_MS);
    if (op === 'p') fail(site, 'waitMs', 'option "waitMs" is for consume and reserve: a peek records nothing to wait for');
    if (waitMs > 0 && !plan.waitable) {
      const rule = plan.rules.find((r) => r.algorithm !== 'sliding-log' && r.algorithm !== 'token-bucket');
      fail(
        site,
        'waitMs',
        `option "waitMs" needs sliding-log or token-bucket rules: rule "${rule?.name}" is ${rule?.algorithm}, whose counter cannot hold a hit of a later window`,
      );
    }
  }

  /** Throws {@link RateLimitInputError} unless a call's fail mode and timeout are valid. */
  private checkCallOptions(failMode: unknown, timeoutMs: unknown, site: InputSite): void {
    checkFailMode(failMode, 'failMode', site);
    checkTimeout(timeoutMs, 'timeoutMs', site);
  }

  /** The rules' plan (see {@link RulePlans}), after checking the identifier. */
  private plan(key: string, rules: RateLimitRule | readonly RateLimitRule[], site: InputSite): Plan {
    checkText(key, 'key', site);
    return this.plans.get(rules, site);
  }
}
