import { SetMetadata, type CustomDecorator } from '@nestjs/common';
import {
  MAX_RATE_LIMIT,
  MAX_WINDOW_MS,
  assertAlgorithm,
  assertFailMode,
  assertPositiveInteger,
  assertRuleName,
  type RateLimitRouteOptions,
  type RateLimitRouteRule,
} from './rate-limit.options';

/** Metadata key of `@RateLimit`. */
export const RATE_LIMIT_METADATA = 'nest-redis-lua:rate-limit';
/** Metadata key of `@SkipRateLimit`. */
export const SKIP_RATE_LIMIT_METADATA = 'nest-redis-lua:skip-rate-limit';

/** What `@RateLimit` stores: the options in one shape, plus where they were declared. */
export interface RateLimitMetadata extends Omit<RateLimitRouteOptions, 'rules' | keyof RateLimitRouteRule> {
  /** Rules, possibly without limit/windowMs (taken from the module defaults). */
  rules: Array<Partial<RateLimitRouteRule>>;
  /** `Controller.method` or `Controller`, for error messages. */
  declaredAt: string;
}

/**
 * Limits a route (on a handler) or every route of a controller (on the class; a handler's own
 * `@RateLimit` wins). Needs the {@link RateLimitGuard} (`@UseGuards(RateLimitGuard)` or as `APP_GUARD`).
 *
 * ```ts
 * @RateLimit({ limit: 100, windowMs: 60_000 })
 * @RateLimit([{ limit: 10, windowMs: 1000, name: 'burst' }, { limit: 1000, windowMs: 3_600_000, name: 'hourly' }])
 * @RateLimit({ limit: (ctx) => tierOf(ctx) === 'pro' ? 1000 : 100, windowMs: 60_000, key: (ctx) => userOf(ctx) })
 * ```
 * Options are checked here, when the class is declared: a wrong limit, window or algorithm throws an
 * error naming the option and `Controller.method`. Missing limit/windowMs come from
 * `forRoot({ rateLimit: { limit, windowMs } })`.
 */
export function RateLimit(options: RateLimitRouteOptions | readonly RateLimitRouteRule[]): MethodDecorator & ClassDecorator {
  return (target: object, propertyKey?: string | symbol, descriptor?: PropertyDescriptor): void => {
    const owner = typeof target === 'function' ? target.name : target.constructor.name;
    const declaredAt = propertyKey === undefined ? owner : `${owner}.${String(propertyKey)}`;
    const metadata = normalize(options, `@RateLimit on ${declaredAt}`, declaredAt);
    const decorator: CustomDecorator = SetMetadata(RATE_LIMIT_METADATA, metadata);
    if (descriptor) (decorator as MethodDecorator)(target, propertyKey!, descriptor);
    else (decorator as ClassDecorator)(target as CallableFunction);
  };
}

/** Exempts a handler or a controller from the {@link RateLimitGuard} (including a global one). */
export const SkipRateLimit = (): CustomDecorator => SetMetadata(SKIP_RATE_LIMIT_METADATA, true);

function normalize(input: RateLimitRouteOptions | readonly RateLimitRouteRule[], where: string, declaredAt: string): RateLimitMetadata {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`nest-redis-lua: ${where}: give a rule, an array of rules or options`);
  }
  const options: RateLimitRouteOptions = Array.isArray(input)
    ? { rules: [...(input as RateLimitRouteRule[])] }
    : (input as RateLimitRouteOptions);
  const { rules, key, cost, failMode, timeoutMs, limit, windowMs, algorithm, name } = options;
  let list: Array<Partial<RateLimitRouteRule>>;
  if (rules !== undefined) {
    if (limit !== undefined || windowMs !== undefined || algorithm !== undefined) {
      throw new TypeError(`nest-redis-lua: ${where}: give either "rules" or limit/windowMs/algorithm, not both`);
    }
    if (!Array.isArray(rules) || rules.length === 0)
      throw new TypeError(`nest-redis-lua: ${where}: option "rules" must be a non-empty array`);
    list = rules;
  } else {
    list = [{ limit, windowMs, algorithm, name }];
  }
  list.forEach((rule, i) => {
    const at = list.length === 1 && rules === undefined ? '' : `rules[${i}].`;
    if (typeof rule !== 'object' || rule === null) throw new TypeError(`nest-redis-lua: ${where}: option "${at}" must be a rule object`);
    if (rule.limit !== undefined && typeof rule.limit !== 'function')
      assertPositiveInteger(rule.limit, `${at}limit`, where, MAX_RATE_LIMIT);
    if (rule.windowMs !== undefined) assertPositiveInteger(rule.windowMs, `${at}windowMs`, where, MAX_WINDOW_MS);
    assertAlgorithm(rule.algorithm, `${at}algorithm`, where);
    assertRuleName(rule.name, `${at}name`, where);
  });
  if (key !== undefined && typeof key !== 'function')
    throw new TypeError(`nest-redis-lua: ${where}: option "key" must be a function of the execution context`);
  if (cost !== undefined && typeof cost !== 'function') assertPositiveInteger(cost, 'cost', where, MAX_RATE_LIMIT);
  assertFailMode(failMode, 'failMode', where);
  if (timeoutMs !== undefined) assertPositiveInteger(timeoutMs, 'timeoutMs', where, 60_000);
  return { rules: list.map((rule) => ({ ...rule })), key, cost, failMode, timeoutMs, declaredAt };
}
