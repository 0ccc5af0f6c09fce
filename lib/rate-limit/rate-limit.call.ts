import type { Command } from 'ioredis';
import { RedisLuaUnavailableError } from '../core/errors';
import { unavailableMessage } from '../scripts/lua-script.errors';
import { LUA_CONSTANTS } from '../scripts/bundled-scripts.generated';
import type { Lane, PendingCall } from './deadlines';
import type { RateLimitResult, ResolvedRateLimitRule } from './rate-limit.options';
import type { RulePlan } from './rule-plan';

/**
 * A rate-limit script's reply: `[allowed, rule index (1-based), remaining, resetMs, retryAfterMs]`,
 * or `[0, 0, 0, ms left, ms left, reason]` when a ban denied (lua/includes/rate-limit-ban.lua),
 * or `[1, rule index, 0, resetMs, 0, delay ms]` when a waiting consume was recorded that far ahead,
 * or, when one rule admits a consume, the integer `remaining * REMAINING_UNIT + resetMs` (see the
 * headers of the lua/rate-limit scripts; the unit comes from lua/includes/rate-limit-reply.lua), or
 * {@link RL_LATE} when the script ran after the call's deadline.
 */
export type ScriptReply =
  [number, number, number, number, number] | [0, 0, 0, number, number, string] | [1, number, 0, number, 0, number] | number;

/** The milliseconds a waiting consume must sleep before its admission (lua/includes/rate-limit-driver.lua), else 0. */
export function delayOf(reply: ScriptReply): number {
  return typeof reply !== 'number' && reply.length === 6 && reply[1] > 0 ? (reply[5] as number) : 0;
}

/** The integer reply's `remaining` unit, from lua/includes/rate-limit-reply.lua. */
const REMAINING_UNIT = LUA_CONSTANTS.RL_REMAINING_UNIT;

/** The reply of a script that ran after the call's deadline and recorded nothing (lua/includes/rate-limit-deadline.lua). */
export const RL_LATE: number = LUA_CONSTANTS.RL_LATE;

/** What a call whose script ran after its deadline reports (its caller was answered by the fail mode). */
export function lateError(timeoutMs: number): RedisLuaUnavailableError {
  return new RedisLuaUnavailableError(
    unavailableMessage('', `the call ran on Redis after its deadline (option "timeoutMs", ${timeoutMs} ms) and recorded nothing`),
    'timeout',
  );
}

/**
 * One consume or peek waiting for Redis. At its deadline the command it waits for is rejected, which
 * settles the call through the same error path as a dropped connection (the fail mode decides).
 */
export class CheckCall implements PendingCall {
  /** The resend of a call the server lacked the script for is in flight (sent at most once per call). */
  recovering = false;
  // DeadlineSweeper's links, declared so that every call has the same shape (one hidden class).
  previousPending?: PendingCall = undefined;
  nextPending?: PendingCall = undefined;
  lane?: Lane = undefined;

  constructor(
    readonly deadline: number,
    private readonly timeoutMs: number,
    /** The EVALSHA (FCALL), or the resend that replaced it. */
    public command: Command,
  ) {}

  expire(): void {
    this.command.reject(
      new RedisLuaUnavailableError(unavailableMessage('', `no reply within ${this.timeoutMs} ms (option "timeoutMs")`), 'timeout'),
    );
  }
}

/** `result.ban` of a ban without a reason (shared). */
const BAN: RateLimitResult['ban'] = Object.freeze({});

/** The result a reply stands for. */
export function resultOf(reply: ScriptReply, plan: RulePlan<unknown>): RateLimitResult {
  if (typeof reply === 'number') {
    // An admitted single-rule consume.
    const remaining = Math.floor(reply / REMAINING_UNIT);
    return {
      allowed: true,
      limit: plan.rules[0].limit,
      remaining,
      resetMs: reply - remaining * REMAINING_UNIT,
      retryAfterMs: 0,
      rule: plan.publicRules[0],
    };
  }
  const index = reply[1] - 1;
  if (index < 0) {
    // A ban: no rule denied. The result names the first rule, with nothing left until the ban ends.
    const reason = reply[5] as string | undefined;
    return {
      allowed: false,
      limit: plan.rules[0].limit,
      remaining: 0,
      resetMs: reply[3],
      retryAfterMs: reply[4],
      rule: plan.publicRules[0],
      ban: reason === '' || reason === undefined ? BAN : { reason },
    };
  }
  return {
    allowed: reply[0] === 1,
    limit: plan.rules[index].limit,
    remaining: Math.max(0, reply[2]),
    resetMs: reply[3],
    retryAfterMs: reply[4],
    rule: plan.publicRules[index],
  };
}

/** What fail-open answers when Redis could not decide: admitted, counting nothing, marked `degraded`. */
export function degradedResult(rule: ResolvedRateLimitRule): RateLimitResult {
  const { limit, windowMs, algorithm, name } = rule;
  return {
    allowed: true,
    limit,
    remaining: limit,
    resetMs: 0,
    retryAfterMs: 0,
    rule: { limit, windowMs, algorithm, name },
    degraded: true,
  };
}
