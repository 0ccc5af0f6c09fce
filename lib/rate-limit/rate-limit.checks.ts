import type { Logger } from '@nestjs/common';
import { RedisLuaUnavailableError } from '../core/errors';
import type { RateLimitDecisionEvent } from '../core/events';
import { describeValue } from '../core/messages';
import { checkInteger, checkText, fail, inputSite, type InputSite } from '../core/validation';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import type { LuaScriptEngine } from '../scripts/lua-script.engine';
import { LuaScriptError, unavailableMessage } from '../scripts/lua-script.errors';
import { BAN_CACHE_MS } from './bans';
import { DeadlineSweeper } from './deadlines';
import { FailModes } from './fail-mode';
import { LocalDenyCache } from './local-deny-cache';
import { LocalLimiter } from './local-limiter';
import { CheckCall, delayOf, lateError, resultOf, RL_LATE, type ScriptReply } from './rate-limit.call';
import { RateLimitInputError, RateLimitUnavailableError } from './rate-limit.errors';
import {
  DEFAULT_LOCAL_CACHE_SIZE,
  DEFAULT_RATE_LIMIT_TIMEOUT_MS,
  MAX_RATE_LIMIT_WAIT_MS,
  type ConsumeOptions,
  type RateLimitFailMode,
  type RateLimitModuleOptions,
  type RateLimitResult,
  type RateLimitRule,
} from './rate-limit.options';
import { checkFailMode, checkTimeout } from './rate-limit.rules';
import { identifierOf, RulePlans, type RulePlan } from './rule-plan';
import { ServerClock } from './server-clock';

/** A plan of the rate-limit scripts. */
export type Plan = RulePlan<LuaScript<ScriptReply>>;

/** The input site of a `RateLimiterService` method (errors name it). */
export const limiterSite = (method: string): InputSite => inputSite(`RateLimiterService.${method}`, RateLimitInputError);

/**
 * The decisions behind `RateLimiterService` (consume, peek, and the charge of a reservation): the
 * rules' plans, this process's deny cache, the call's deadline on Redis's clock, the ban key when
 * bans are on, the script call, and the fail modes when Redis cannot decide.
 */
export class RateLimitChecks {
  /** Denials known to hold until a time: answered without a round trip until then. */
  readonly denied: LocalDenyCache<RateLimitResult>;
  /** The clock offset to the servers (measured at boot by the service). */
  readonly clock: ServerClock;
  private readonly failModes: FailModes;
  /** The in-memory limiter of `failMode: 'local'`. */
  private readonly local: LocalLimiter;
  /** Resolved rules per rules object (a route's or a caller's constant): validated once, not per call. */
  private readonly plans: RulePlans<LuaScript<ScriptReply>>;
  private readonly deadlines = new DeadlineSweeper();
  /** The module's failMode and timeoutMs, or the error a call without its own options reports. */
  private readonly defaultFailMode: RateLimitFailMode;
  private readonly defaultTimeoutMs: number;
  private readonly defaultsError?: string;
  /** Consumes report their decisions (`onEvent`, OpenTelemetry metrics). */
  private readonly reporting: boolean;

  constructor(
    private readonly engine: LuaScriptEngine,
    keys: KeyBuilder,
    options: RateLimitModuleOptions,
    logger: Logger,
    /** Each identifier's ban key, when `rateLimit.bans` is on (every consume and peek then checks it). */
    private readonly banKeyOf: ((identifier: string) => string) | undefined,
  ) {
    this.failModes = new FailModes(logger, options);
    this.local = new LocalLimiter(options.localCacheSize || DEFAULT_LOCAL_CACHE_SIZE, options.localLimitFactor ?? 1);
    this.denied = new LocalDenyCache(options.localCacheSize ?? DEFAULT_LOCAL_CACHE_SIZE);
    const scripts = {
      'sliding-log': engine.bundled<ScriptReply>('rate-limit/sliding-log'),
      'sliding-window': engine.bundled<ScriptReply>('rate-limit/sliding-window'),
      'token-bucket': engine.bundled<ScriptReply>('rate-limit/token-bucket'),
      'fixed-window': engine.bundled<ScriptReply>('rate-limit/fixed-window'),
      mixed: engine.bundled<ScriptReply>('rate-limit/mixed'),
    };
    this.plans = new RulePlans(scripts, keys, options);
    this.clock = new ServerClock(engine.client);
    this.defaultFailMode = options.failMode ?? 'open';
    this.defaultTimeoutMs = options.timeoutMs ?? DEFAULT_RATE_LIMIT_TIMEOUT_MS;
    this.reporting = engine.telemetry?.recording === true;
    try {
      this.checkCallOptions(this.defaultFailMode, this.defaultTimeoutMs, limiterSite('consume'));
    } catch (err) {
      this.defaultsError = (err as Error).message;
    }
  }

  /**
   * One check. Not an `async` function: the common path allocates the EVALSHA promise, its `then`
   * and the returned promise, nothing more (each layer of async/await cost measurable client CPU).
   * A consume's decision is reported as a `rate_limit.decision` event when telemetry records events:
   * inline on the common path, by a `then` on the rare ones (fail modes, waits); input and script
   * errors are no decisions. Never throws synchronously: every error is a rejection.
   */
  check(
    op: 'c' | 'p',
    key: string,
    rules: RateLimitRule | readonly RateLimitRule[],
    options: ConsumeOptions | undefined,
    site: InputSite,
  ): Promise<RateLimitResult> {
    let plan: Plan;
    const reporting = this.reporting && op === 'c';
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
      if (options?.route !== undefined) checkText(options.route, 'route', site, { maxLength: 200 }, 'option');
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
      if (cached) {
        const result = { ...cached.value, retryAfterMs: Math.ceil(cached.leftMs) };
        if (reporting) this.report(result, key, options);
        return Promise.resolve(result);
      }
    }

    const { status } = this.engine.client;
    // 'wait': a lazyConnect client that connects on its first command. Otherwise the call would wait
    // in the offline queue: decided by the fail mode at once instead.
    if (status !== 'ready' && status !== 'wait') {
      const down = new RedisLuaUnavailableError(unavailableMessage('', `the connection is ${status}`), 'unreachable');
      this.engine.telemetry?.unavailable(down, plan.script.where);
      const settled = this.failModes.settle(down, key, failMode, plan.rules[0], () => this.decideLocally(op, plan, redisKeys, cost));
      return reporting ? this.reportLater(settled, key, plan, options) : settled;
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
    // With telemetry the reply handlers time the call (cheaper than wrapping its command).
    const call = new CheckCall(sentAt + timeoutMs, timeoutMs, plan.script.send(redisKeys, args, this.reporting));
    // Time-outs share one timer per timeout value (see DeadlineSweeper), not one timer per call.
    this.deadlines.watch(timeoutMs, call);
    const onReply = (reply: ScriptReply): RateLimitResult | Promise<RateLimitResult> => {
      this.deadlines.release(call);
      if (this.reporting && !call.recovering) plan.script.called(sentAt, undefined);
      if (reply === RL_LATE) {
        const late = lateError(timeoutMs);
        this.engine.telemetry?.unavailable(late, plan.script.where);
        const settled = this.failModes.settle(late, key, failMode, plan.rules[0], () => this.decideLocally(op, plan, redisKeys, cost));
        return reporting ? this.reportLater(settled, key, plan, options) : settled;
      }
      this.failModes.answered();
      if (waiting) {
        const waited = this.waited(reply, plan);
        return reporting ? this.reportLater(Promise.resolve(waited), key, plan, options) : waited;
      }
      const result = this.result(reply, plan, op, sentAt, redisKeys, cost, cacheKey);
      if (reporting) this.report(result, key, options);
      return result;
    };
    const onError = (err: unknown): Promise<RateLimitResult> => {
      if (this.reporting && !call.recovering) plan.script.called(sentAt, err);
      // The server lacked the script (NOSCRIPT, or a missing function): it did not run; the call goes
      // out once more (EVAL of its body, or FCALL once the library is loaded), under the same deadline.
      const retry = call.recovering ? undefined : plan.script.resend(err, redisKeys, args);
      if (retry) {
        call.recovering = true;
        call.command = retry;
        return (retry.promise as Promise<ScriptReply>).then(onReply, onError);
      }
      this.deadlines.release(call);
      const failure = plan.script.scriptError(err);
      if (failure instanceof LuaScriptError) return Promise.reject(failure);
      const settled = this.failModes.settle(failure, key, failMode, plan.rules[0], () => this.decideLocally(op, plan, redisKeys, cost));
      return reporting ? this.reportLater(settled, key, plan, options) : settled;
    };
    // A reply that comes after the deadline finds its command already rejected: ignored by ioredis.
    return (call.command.promise as Promise<ScriptReply>).then(onReply, onError);
  }

  /** Reports a consume's decision (a `rate_limit.decision` event); RateLimitMiddleware's early denials too. */
  report(result: RateLimitResult, key: string, options: ConsumeOptions | undefined): void {
    const outcome = result.degraded ? 'degraded' : result.ban ? 'blocked' : result.allowed ? 'allowed' : 'denied';
    this.decision(outcome, result.allowed, result.rule.name, key, options);
  }

  /** Reports a decision a fail mode or a wait settles; `failMode: 'closed'`'s refusal as `unavailable`. */
  private reportLater(
    decided: Promise<RateLimitResult>,
    key: string,
    plan: Plan,
    options: ConsumeOptions | undefined,
  ): Promise<RateLimitResult> {
    return decided.then(
      (result) => {
        this.report(result, key, options);
        return result;
      },
      (err: unknown) => {
        if (err instanceof RateLimitUnavailableError) this.decision('unavailable', false, plan.rules[0].name, key, options);
        throw err;
      },
    );
  }

  private decision(
    outcome: RateLimitDecisionEvent['outcome'],
    allowed: boolean,
    rule: string,
    key: string,
    options: ConsumeOptions | undefined,
  ): void {
    const event = { type: 'rate_limit.decision', outcome, allowed, rule, route: options?.route, key, cost: options?.cost ?? 1 } as const;
    this.engine.telemetry?.emit(event);
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
  plan(key: string, rules: RateLimitRule | readonly RateLimitRule[], site: InputSite): Plan {
    checkText(key, 'key', site);
    return this.plans.get(rules, site);
  }
}
