import { Inject, Injectable, Logger } from '@nestjs/common';
import { REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { LuaScriptError } from '../scripts/lua-script.errors';
import { RateLimitInputError, RateLimitUnavailableError } from './rate-limit.errors';
import { LocalDenyCache } from './local-deny-cache';
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

/** `{ allowed, rule index (1-based), remaining, resetMs, retryAfterMs }` */
type ScriptReply = [number, number, number, number, number];

/** The Redis key feature segment of rate-limit keys. */
const FEATURE = 'rl';

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
  }

  /**
   * Records a hit of `cost` units for `key` if every rule admits it (otherwise records nothing).
   * The result describes the tightest rule. When Redis is down or slower than `timeoutMs`, `failMode`
   * decides: `open` returns an admitted result marked `degraded`, `closed` throws
   * {@link RateLimitUnavailableError}.
   * @throws RateLimitInputError for an empty key, bad rules or a bad cost (before any Redis call).
   */
  async consume(key: string, rules: RateLimitRule | readonly RateLimitRule[], options: ConsumeOptions = {}): Promise<RateLimitResult> {
    return this.check('c', key, rules, options);
  }

  /** What `consume` would answer, recording nothing. */
  async peek(key: string, rules: RateLimitRule | readonly RateLimitRule[], options: ConsumeOptions = {}): Promise<RateLimitResult> {
    return this.check('p', key, rules, options);
  }

  /** Forgets every hit of `key` under `rules` (in Redis and in this process's deny cache). */
  async reset(key: string, rules: RateLimitRule | readonly RateLimitRule[]): Promise<void> {
    const resolved = this.resolve(key, rules, 'reset');
    const redisKeys = resolved.map((rule) => this.ruleKey(key, rule));
    this.denied.deletePrefix(`${redisKeys.join(' ')} `);
    await this.engine.client.del(...redisKeys);
  }

  private async check(
    op: 'c' | 'p',
    key: string,
    rules: RateLimitRule | readonly RateLimitRule[],
    options: ConsumeOptions,
  ): Promise<RateLimitResult> {
    const resolved = this.resolve(key, rules, op === 'c' ? 'consume' : 'peek');
    const cost = options.cost ?? 1;
    const smallest = Math.min(...resolved.map((r) => r.limit));
    if (!Number.isInteger(cost) || cost < 1 || cost > smallest) {
      throw new RateLimitInputError(`nest-redis-lua: rate-limit cost must be an integer between 1 and the smallest limit (${smallest}), got ${cost}`);
    }
    const failMode = options.failMode ?? this.options.failMode ?? 'open';
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_RATE_LIMIT_TIMEOUT_MS;
    // Per-call options, checked before any Redis call (a NaN timeout would decide at once).
    try {
      assertFailMode(failMode, 'failMode', `RateLimiterService.${op === 'c' ? 'consume' : 'peek'}`);
      assertPositiveInteger(timeoutMs, 'timeoutMs', `RateLimiterService.${op === 'c' ? 'consume' : 'peek'}`, 60_000);
    } catch (err) {
      throw new RateLimitInputError((err as Error).message);
    }

    const redisKeys = resolved.map((rule) => this.ruleKey(key, rule));
    const cacheKey = `${redisKeys.join(' ')} ${cost}`;
    const cached = this.denied.get(cacheKey);
    if (cached) return { ...cached.value, retryAfterMs: Math.ceil(cached.leftMs) };

    const algorithms = new Set(resolved.map((r) => r.algorithm));
    const script = algorithms.size === 1 ? this.scripts[resolved[0].algorithm] : this.scripts.mixed;
    const args: Array<string | number> = [op, cost];
    for (const rule of resolved) args.push(RATE_LIMIT_ALGORITHMS[rule.algorithm], rule.limit, rule.windowMs);

    const sentAt = performance.now();
    let reply: ScriptReply;
    try {
      reply = await this.runWithin(script, redisKeys, args, timeoutMs);
    } catch (err) {
      if (err instanceof LuaScriptError) throw err;
      return this.unavailable(err as Error, key, failMode, resolved[0]);
    }
    this.outage = false;
    const [allowed, index, remaining, resetMs, retryAfterMs] = reply;
    const rule = resolved[index - 1];
    const result: RateLimitResult = {
      allowed: allowed === 1,
      limit: rule.limit,
      remaining: Math.max(0, remaining),
      resetMs,
      retryAfterMs,
      rule: { ...rule },
    };
    if (!result.allowed && op === 'c') this.denied.set(cacheKey, sentAt + retryAfterMs - performance.now(), result);
    return result;
  }

  /** The script's reply, or a rejection after `timeoutMs`; fails at once when the client is not connected. */
  private runWithin(script: LuaScript<ScriptReply>, keys: string[], args: Array<string | number>, timeoutMs: number): Promise<ScriptReply> {
    const { status } = this.engine.client;
    // 'wait': a lazyConnect client that connects on its first command.
    if (status !== 'ready' && status !== 'wait') {
      return Promise.reject(new Error(`Redis connection is ${status}`));
    }
    const running = script.run(keys, args);
    return new Promise<ScriptReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms (option "timeoutMs")`)), timeoutMs);
      // A late failure, after the timeout decided, is settled here: never an unhandled rejection.
      running.then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
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

  private resolve(key: string, rules: RateLimitRule | readonly RateLimitRule[], method: string): ResolvedRateLimitRule[] {
    if (typeof key !== 'string' || key.length === 0) {
      throw new RateLimitInputError(`nest-redis-lua: RateLimiterService.${method}: key must be a non-empty string`);
    }
    try {
      return resolveRules(rules, `RateLimiterService.${method}`, this.options);
    } catch (err) {
      throw new RateLimitInputError((err as Error).message);
    }
  }

  /** `<prefix>:rl:{<key>}:<algorithm code>:<windowMs>:<limit>`: one slot per identifier. */
  private ruleKey(key: string, rule: ResolvedRateLimitRule): string {
    return this.keys.key(FEATURE, [key], RATE_LIMIT_ALGORITHMS[rule.algorithm], rule.windowMs, rule.limit);
  }
}
