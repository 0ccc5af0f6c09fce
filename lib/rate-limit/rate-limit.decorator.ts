import { SetMetadata, type CustomDecorator } from '@nestjs/common';
import { routeDecorator } from '../core/route-metadata';
import { RateLimitGuard } from './rate-limit.guard';
import { mustBe } from '../core/messages';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA, type RateLimitMetadata } from './rate-limit.metadata';
import {
  checkBoolean,
  checkChoice,
  checkFunction,
  checkInteger,
  checkKnownKeys,
  fail,
  inputSite,
  keysOf,
  type InputSite,
} from '../core/validation';
import { RateLimitInputError } from './rate-limit.errors';
import { MAX_RATE_LIMIT, type RateLimitRouteOptions, type RateLimitRouteRule } from './rate-limit.options';
import { checkFailMode, checkRuleFields, checkTimeout } from './rate-limit.rules';

/**
 * Limits a route (on a handler) or every route of a controller (on the class; a handler's own
 * `@RateLimit` wins). It applies the {@link RateLimitGuard} itself: no `@UseGuards` or global guard
 * is needed, and a request is counted once however many times the guard is registered (globally
 * with `APP_GUARD`, with `@UseGuards`, by this decorator).
 *
 * ```ts
 * @RateLimit({ limit: 100, windowMs: 60_000 })
 * @RateLimit([{ limit: 10, windowMs: 1000, name: 'burst' }, { limit: 1000, windowMs: 3_600_000, name: 'hourly' }])
 * @RateLimit({ limit: (ctx) => tierOf(ctx) === 'pro' ? 1000 : 100, windowMs: 60_000, key: (ctx) => userOf(ctx) })
 * ```
 * Options are checked here, when the class is declared: a wrong limit, window or algorithm throws a
 * {@link RateLimitInputError} naming the option and `Controller.method`. Missing limit/windowMs come
 * from `forRoot({ rateLimit: { limit, windowMs } })`, checked at boot.
 * @throws RateLimitInputError on an invalid option, when the class is declared.
 */
export function RateLimit(options: RateLimitRouteOptions | readonly RateLimitRouteRule[]): MethodDecorator & ClassDecorator {
  return (target: object, propertyKey?: string | symbol, descriptor?: PropertyDescriptor): void => {
    const owner = typeof target === 'function' ? target.name : target.constructor.name;
    const declaredAt = propertyKey === undefined ? owner : `${owner}.${String(propertyKey)}`;
    const metadata = normalize(options, inputSite(`@RateLimit on ${declaredAt}`, RateLimitInputError), declaredAt);
    routeDecorator(RATE_LIMIT_METADATA, metadata, { guard: RateLimitGuard })(
      target,
      propertyKey as string | symbol,
      descriptor as PropertyDescriptor,
    );
  };
}

/**
 * Exempts a handler or a controller from rate limiting, a global {@link RateLimitGuard} included.
 *
 * ```ts
 * @Get('health') @SkipRateLimit() health() { return 'ok'; }
 * ```
 */
export const SkipRateLimit = (): CustomDecorator => SetMetadata(SKIP_RATE_LIMIT_METADATA, true);

const COUNT_ONLY: ReadonlyArray<NonNullable<RateLimitRouteOptions['countOnly']>> = ['failed', 'succeeded'];

const ROUTE_OPTION_KEYS = keysOf<RateLimitRouteOptions>({
  limit: true,
  windowMs: true,
  algorithm: true,
  name: true,
  blockMs: true,
  rules: true,
  key: true,
  cost: true,
  failMode: true,
  timeoutMs: true,
  earlyDeny: true,
  countOnly: true,
  skip: true,
});

function normalize(input: RateLimitRouteOptions | readonly RateLimitRouteRule[], site: InputSite, declaredAt: string): RateLimitMetadata {
  if (typeof input !== 'object' || input === null) fail(site, 'options', mustBe('options', 'a rule, an array of rules or options', input));
  const options: RateLimitRouteOptions = Array.isArray(input)
    ? { rules: [...(input as RateLimitRouteRule[])] }
    : (input as RateLimitRouteOptions);
  checkKnownKeys(options, ROUTE_OPTION_KEYS, site);
  const { rules, key, cost, failMode, timeoutMs, limit, windowMs, algorithm, name, blockMs, earlyDeny, countOnly, skip } = options;
  let list: Array<Partial<RateLimitRouteRule>>;
  if (rules !== undefined) {
    if (limit !== undefined || windowMs !== undefined || algorithm !== undefined || blockMs !== undefined) {
      fail(site, 'rules', 'give either "rules" or limit/windowMs/algorithm/blockMs, not both');
    }
    if (!Array.isArray(rules) || rules.length === 0) fail(site, 'rules', mustBe('rules', 'a non-empty array', rules));
    list = rules;
  } else {
    list = [{ limit, windowMs, algorithm, name, blockMs }];
  }
  list.forEach((rule, i) => checkRuleFields(rule, list.length === 1 && rules === undefined ? '' : `rules[${i}].`, site));
  if (key !== undefined) checkFunction(key, 'key', site, 'a function of the execution context');
  if (cost !== undefined && typeof cost !== 'function') checkInteger(cost, 'cost', site, 1, MAX_RATE_LIMIT);
  checkFailMode(failMode, 'failMode', site);
  checkTimeout(timeoutMs, 'timeoutMs', site);
  if (earlyDeny !== undefined) checkBoolean(earlyDeny, 'earlyDeny', site);
  if (earlyDeny && typeof cost === 'function') {
    fail(site, 'earlyDeny', 'earlyDeny needs a constant cost: a denial of one cost says nothing of another');
  }
  if (countOnly !== undefined) checkChoice(countOnly, 'countOnly', site, COUNT_ONLY);
  if (skip !== undefined) checkFunction(skip, 'skip', site, 'a function of the execution context');
  return { rules: list.map((rule) => ({ ...rule })), key, cost, failMode, timeoutMs, earlyDeny, countOnly, skip, declaredAt };
}
