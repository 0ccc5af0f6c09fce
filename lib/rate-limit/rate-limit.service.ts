import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Command } from 'ioredis';
import { REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { LuaScriptError } from '../scripts/lua-script.errors';
import { RateLimitInputError, RateLimitUnavailableError } from './rate-limit.errors';
import { LocalDenyCache } from './local-deny-cache';
import { DeadlineSweeper, type Lane, type PendingCall } from './deadlines';
import {
  DEFAULT_LOCAL_CACHE_SIZE,
  DEFAULT_RATE_LIMIT_TIMEOUT_MS,
  RATE_LIMIT_ALGORITHMS,
  assertFailMode,
  assertPositiveInteger,
  resolveRules,
  type RateLimitAlgorithm,
  type RateLimitFailMode,
  type RateLimitModuleOptions,
  type RateLimitResult,
  type RateLimitRule,
  type ResolvedRateLimitRule,
} from './rate-limit.options';

/** Options of one {@link RateLimiterService.consume} call. */
export interface ConsumeOptions {
  /** Units this hit takes (integer >= 1, at most the smallest limit; default 1). */
  cost?: number;
  /** Overrides the module's `failMode`. */
  failMode?: RateLimitFailMode;
  /** Overrides the module's `timeoutMs`. */
  timeoutMs?: number;
}

/**
 * `[allowed, rule index (1-based), remaining, resetMs, retryAfterMs]`, or, when one rule admits a
 * consume, the integer `remaining * 2^33 + resetMs` (see the scripts' headers).
 */
type ScriptReply = [number, number, number, number, number] | number;

/** 2^33: the integer reply's `remaining` unit (resetMs, at most two 30-day windows, stays below it). */
const REMAINING_UNIT = 8_589_934_592;

/** The Redis key feature segment of rate-limit keys. */
const FEATURE = 'rl';

/** Everything a call needs from its rules, computed once per rules object (see `plan`). */
interface RulePlan {
  readonly rules: readonly ResolvedRateLimitRule[];
  /** Each rule as results show it (frozen, shared by every result of the plan). */
  readonly publicRules: ReadonlyArray<RateLimitResult['rule']>;
  /** The fields the plan was made from, compared on every use: a mutated rule object is resolved again. */
  readonly snapshot: readonly unknown[];
  readonly script: LuaScript<ScriptReply>;
  /** ARGV after `op` and `cost`: algorithm code, limit and window of each rule (decimal strings). */
  readonly ruleArgs: readonly string[];
  /** One rule: the compact ARGV of a consume, `[limit, windowMs]` (the cost follows unless it is 1). */
  readonly consumeArgs?: readonly string[];
  /** Builds each rule's key from the identifier. */
  readonly keyOf: ReadonlyArray<(key: string) => string>;
  readonly smallestLimit: number;
}

/** The fields of `rules` a plan depends on, in a flat list (rule objects included, by identity). */
function snapshotOf(rules: RateLimitRule | readonly RateLimitRule[]): unknown[] {
  const list: readonly RateLimitRule[] = Array.isArray(rules) ? rules : [rules as RateLimitRule];
  const values: unknown[] = [list.length];
  for (const rule of list) {
    if (typeof rule !== 'object' || rule === null) values.push(rule);
    else values.push(rule, rule.limit, rule.windowMs, rule.algorithm, rule.name);
  }
  return values;
}

/** True if `rules` still has the fields `snapshot` was taken from (no allocation: runs on every call). */
function unchanged(snapshot: readonly unknown[], rules: RateLimitRule | readonly RateLimitRule[]): boolean {
  if (!Array.isArray(rules)) {
    const rule = rules as RateLimitRule;
    return (
      snapshot.length === 6 &&
      snapshot[0] === 1 &&
      snapshot[1] === rule &&
      snapshot[2] === rule.limit &&
      snapshot[3] === rule.windowMs &&
      snapshot[4] === rule.algorithm &&
      snapshot[5] === rule.name
    );
  }
  const list = rules as readonly RateLimitRule[];
  if (snapshot[0] !== list.length || snapshot.length !== 1 + 5 * list.length) return false;
  for (let i = 0, j = 1; i < list.length; i++, j += 5) {
    const rule = list[i];
    if (
      snapshot[j] !== rule ||
      snapshot[j + 1] !== rule.limit ||
      snapshot[j + 2] !== rule.windowMs ||
      snapshot[j + 3] !== rule.algorithm ||
      snapshot[j + 4] !== rule.name
    )
      return false;
  }
  return true;
}

/**
 * One consume or peek waiting for Redis. At its deadline the command it waits for is rejected, which
 * settles the call through the same error path as a dropped connection (the fail mode decides).
 */
class CheckCall implements PendingCall {
  /** An EVAL after NOSCRIPT is in flight (sent at most once per call). */
  recovering = false;
  // DeadlineSweeper's links, declared so that every call has the same shape.
  previousPending?: PendingCall = undefined;
  nextPending?: PendingCall = undefined;
  lane?: Lane = undefined;

  constructor(
    readonly deadline: number,
    private readonly timeoutMs: number,
    /** The EVALSHA, or the EVAL that replaced it. */
    public command: Command,
  ) {}

  expire(): void {
    this.command.reject(new Error(`Redis did not answer within ${this.timeoutMs} ms (option "timeoutMs")`));
  }
}

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
export class RateLimiterService {
  private readonly logger = new Logger('RateLimit');
  private readonly scripts: Record<RateLimitAlgorithm | 'mixed', LuaScript<ScriptReply>>;
  private readonly denied: LocalDenyCache<RateLimitResult>;
  /** Module-level rate-limit options (validated at boot with the connection options). */
  readonly options: RateLimitModuleOptions;
  private outage = false;
  /** Resolved rules per rules object (a route's or a caller's constant): validated once, not per call. */
  private readonly plans = new WeakMap<object, RulePlan>();
  private readonly deadlines = new DeadlineSweeper();
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
    this.denied = new LocalDenyCache(this.options.localCacheSize ?? DEFAULT_LOCAL_CACHE_SIZE);
    this.scripts = {
      'sliding-log': engine.bundled<ScriptReply>('rate-limit/sliding-log'),
      'sliding-window': engine.bundled<ScriptReply>('rate-limit/sliding-window'),
      'token-bucket': engine.bundled<ScriptReply>('rate-limit/token-bucket'),
      'fixed-window': engine.bundled<ScriptReply>('rate-limit/fixed-window'),
      mixed: engine.bundled<ScriptReply>('rate-limit/mixed'),
    };
    this.defaultFailMode = this.options.failMode ?? 'open';
    this.defaultTimeoutMs = this.options.timeoutMs ?? DEFAULT_RATE_LIMIT_TIMEOUT_MS;
    try {
      this.checkCallOptions(this.defaultFailMode, this.defaultTimeoutMs, 'c');
    } catch (err) {
      this.defaultsError = (err as Error).message;
    }
  }

  /**
   * Records a hit of `cost` units for `key` if every rule admits it (otherwise records nothing).
   * The result describes the tightest rule. When Redis is down or slower than `timeoutMs`, `failMode`
   * decides: `open` returns an admitted result marked `degraded`, `closed` throws
   * {@link RateLimitUnavailableError}.
   * @throws RateLimitInputError for an empty key, bad rules or a bad cost (before any Redis call).
   */
  consume(key: string, rules: RateLimitRule | readonly RateLimitRule[], options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.check('c', key, rules, options);
  }

  /** What `consume` would answer, recording nothing. */
  peek(key: string, rules: RateLimitRule | readonly RateLimitRule[], options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.check('p', key, rules, options);
  }

  /**
   * Forgets every hit of `key` under `rules` in Redis, and every local denial of `key` in this
   * process's deny cache (other processes see the reset once their cached denial runs out).
   */
  async reset(key: string, rules: RateLimitRule | readonly RateLimitRule[]): Promise<void> {
    const plan = this.plan(key, rules, 'reset');
    const redisKeys = plan.keyOf.map((keyOf) => keyOf(key));
    // Every deny-cache entry of this identifier, whatever its rules: all its Redis keys carry its hash
    // tag, and no other identifier's keys can contain it (encoded parts never contain braces).
    this.denied.deleteContaining(this.keys.tag([key]));
    await this.engine.client.del(...redisKeys);
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
  ): Promise<RateLimitResult> {
    let plan: RulePlan;
    let failMode = this.defaultFailMode;
    let timeoutMs = this.defaultTimeoutMs;
    const cost = options?.cost ?? 1;
    try {
      plan = this.plan(key, rules, op === 'c' ? 'consume' : 'peek');
      if (cost !== 1 && (!Number.isInteger(cost) || cost < 1 || cost > plan.smallestLimit)) {
        throw new RateLimitInputError(
          `nest-redis-lua: rate-limit cost must be an integer between 1 and the smallest limit (${plan.smallestLimit}), got ${cost}`,
        );
      }
      if (options?.failMode !== undefined || options?.timeoutMs !== undefined) {
        failMode = options.failMode ?? failMode;
        timeoutMs = options.timeoutMs ?? timeoutMs;
        // Per-call options, checked before any Redis call (a NaN timeout would decide at once).
        this.checkCallOptions(failMode, timeoutMs, op);
      } else if (this.defaultsError !== undefined) {
        throw new RateLimitInputError(this.defaultsError);
      }
    } catch (err) {
      return Promise.reject(err);
    }

    const { keyOf } = plan;
    const redisKeys = keyOf.length === 1 ? [keyOf[0](key)] : keyOf.map((f) => f(key));
    // The deny cache's key; not built while the cache is empty (the common case: nobody is over a limit).
    let cacheKey: string | undefined;
    if (this.denied.size > 0) {
      cacheKey = `${redisKeys.length === 1 ? redisKeys[0] : redisKeys.join(' ')} ${cost}`;
      const cached = this.denied.get(cacheKey);
      if (cached) return Promise.resolve({ ...cached.value, retryAfterMs: Math.ceil(cached.leftMs) });
    }

    const { status } = this.engine.client;
    // 'wait': a lazyConnect client that connects on its first command.
    if (status !== 'ready' && status !== 'wait') {
      return this.settleUnavailable(new Error(`Redis connection is ${status}`), key, failMode, plan);
    }
    const sentAt = performance.now();
    const { consumeArgs } = plan;
    const args =
      consumeArgs !== undefined && op === 'c'
        ? cost === 1
          ? consumeArgs
          : [...consumeArgs, String(cost)]
        : [op, String(cost), ...plan.ruleArgs];
    const call = new CheckCall(sentAt + timeoutMs, timeoutMs, plan.script.send(redisKeys, args));
    // Time-outs share one timer per timeout value (see DeadlineSweeper), not one timer per call.
    this.deadlines.watch(timeoutMs, call);
    const onReply = (reply: ScriptReply): RateLimitResult => {
      this.deadlines.release(call);
      this.outage = false;
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
      return this.settleUnavailable(failure as Error, key, failMode, plan);
    };
    // A reply that comes after the deadline finds its command already rejected: ignored by ioredis.
    return (call.command.promise as Promise<ScriptReply>).then(onReply, onError);
  }

  /** The result of a reply; a denied consume is remembered in the deny cache until it may pass. */
  private result(
    reply: ScriptReply,
    plan: RulePlan,
    op: 'c' | 'p',
    sentAt: number,
    redisKeys: readonly string[],
    cost: number,
    cacheKey: string | undefined,
  ): RateLimitResult {
    if (typeof reply === 'number') {
      // An admitted single-rule consume.
      const remaining = Math.floor(reply / REMAINING_UNIT);
      const rule = plan.rules[0];
      return {
        allowed: true,
        limit: rule.limit,
        remaining,
        resetMs: reply - remaining * REMAINING_UNIT,
        retryAfterMs: 0,
        rule: plan.publicRules[0],
      };
    }
    const index = reply[1] - 1;
    const rule = plan.rules[index];
    const result: RateLimitResult = {
      allowed: reply[0] === 1,
      limit: rule.limit,
      remaining: Math.max(0, reply[2]),
      resetMs: reply[3],
      retryAfterMs: reply[4],
      rule: plan.publicRules[index],
    };
    if (!result.allowed && op === 'c') {
      const denyKey = cacheKey ?? `${redisKeys.length === 1 ? redisKeys[0] : redisKeys.join(' ')} ${cost}`;
      this.denied.set(denyKey, sentAt + result.retryAfterMs - performance.now(), result);
    }
    return result;
  }

  /** The fail mode's answer when Redis could not decide: a degraded result, or a rejection (`closed`). */
  private settleUnavailable(error: Error, key: string, failMode: RateLimitFailMode, plan: RulePlan): Promise<RateLimitResult> {
    try {
      return Promise.resolve(this.unavailable(error, key, failMode, plan.rules[0]));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Throws {@link RateLimitInputError} unless a call's fail mode and timeout are valid. */
  private checkCallOptions(failMode: unknown, timeoutMs: unknown, op: 'c' | 'p'): void {
    try {
      assertFailMode(failMode, 'failMode', `RateLimiterService.${op === 'c' ? 'consume' : 'peek'}`);
      assertPositiveInteger(timeoutMs, 'timeoutMs', `RateLimiterService.${op === 'c' ? 'consume' : 'peek'}`, 60_000);
    } catch (err) {
      throw new RateLimitInputError((err as Error).message);
    }
  }

  private unavailable(error: Error, key: string, failMode: RateLimitFailMode, rule: ResolvedRateLimitRule): RateLimitResult {
    if (!this.outage) {
      this.outage = true;
      this.logger.warn(`Redis unavailable, rate limits fail ${failMode} until it answers again: ${error.message}`);
    }
    try {
      this.options.onUnavailable?.({ error, key, failMode });
    } catch {
      // A reporting hook must not change the decision.
    }
    if (failMode === 'closed') throw new RateLimitUnavailableError(key, failMode, { cause: error });
    return {
      allowed: true,
      limit: rule.limit,
      remaining: rule.limit,
      resetMs: 0,
      retryAfterMs: 0,
      rule: { ...rule },
      degraded: true,
    };
  }

  /**
   * The rules' plan: validated and resolved on first use of a rules object, then reused as long as
   * the object's fields are unchanged (a mutated or new object is resolved again).
   */
  private plan(key: string, rules: RateLimitRule | readonly RateLimitRule[], method: string): RulePlan {
    if (typeof key !== 'string' || key.length === 0) {
      throw new RateLimitInputError(`nest-redis-lua: RateLimiterService.${method}: key must be a non-empty string`);
    }
    const cacheable = typeof rules === 'object' && rules !== null;
    const known = cacheable ? this.plans.get(rules) : undefined;
    if (known && unchanged(known.snapshot, rules)) return known;
    let resolved: ResolvedRateLimitRule[];
    try {
      resolved = resolveRules(rules, `RateLimiterService.${method}`, this.options);
    } catch (err) {
      throw new RateLimitInputError((err as Error).message);
    }
    const ruleArgs: string[] = [];
    for (const rule of resolved) ruleArgs.push(RATE_LIMIT_ALGORITHMS[rule.algorithm], String(rule.limit), String(rule.windowMs));
    const algorithm = resolved[0].algorithm;
    const plan: RulePlan = {
      rules: resolved,
      publicRules: resolved.map((r) => Object.freeze({ limit: r.limit, windowMs: r.windowMs, algorithm: r.algorithm, name: r.name })),
      snapshot: snapshotOf(rules),
      script: resolved.every((r) => r.algorithm === algorithm) ? this.scripts[algorithm] : this.scripts.mixed,
      ruleArgs,
      consumeArgs: resolved.length === 1 ? [String(resolved[0].limit), String(resolved[0].windowMs)] : undefined,
      // `<prefix>:rl:{<key>}:<algorithm code>:<windowMs>:<limit>`: one slot per identifier.
      keyOf: resolved.map((rule) => this.keys.keyFactory(FEATURE, RATE_LIMIT_ALGORITHMS[rule.algorithm], rule.windowMs, rule.limit)),
      smallestLimit: resolved.reduce((min, r) => Math.min(min, r.limit), Infinity),
    };
    if (cacheable) this.plans.set(rules, plan);
    return plan;
  }
}
