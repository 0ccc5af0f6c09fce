import type { BootRoute, RedisLuaFeature } from '../module/feature';
import { fail, inputSite } from '../core/validation';
import { RateLimitInputError } from './rate-limit.errors';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA, type RateLimitMetadata } from './rate-limit.metadata';
import type { RateLimitModuleOptions } from './rate-limit.options';
import { constantLimits, missingDefault, resolveRouteRules, validateRateLimitModuleOptions } from './rate-limit.rules';
import { RateLimiterService } from './rate-limit.service';

/**
 * Rate limiting as a feature of the module: `RateLimiterService`, the `rateLimit` section of the
 * module options, and the boot check of every `@RateLimit` route.
 */
export const rateLimitFeature: RedisLuaFeature = {
  name: 'rate limiting',
  options: { key: 'rateLimit', validate: validateRateLimitModuleOptions },
  providers: [RateLimiterService],
  checkRoute: checkRateLimitRoute,
};

/**
 * Checks a `@RateLimit` route with the module's defaults filled in: a rule without `limit` or
 * `windowMs` needs a default in `forRoot({ rateLimit })`; rules with fixed limits must not repeat each
 * other, and a fixed `cost` must not exceed the smallest limit. Values given in `@RateLimit` itself
 * were already checked when the class was declared.
 */
function checkRateLimitRoute({ handler, controller, where, reflector, options }: BootRoute): void {
  const targets = [handler, controller];
  if (reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT_METADATA, targets)) return;
  const route = reflector.getAllAndOverride<RateLimitMetadata | undefined>(RATE_LIMIT_METADATA, targets);
  if (!route) return;
  const site = inputSite(`@RateLimit on ${where}`, RateLimitInputError);
  const defaults: RateLimitModuleOptions = (options as { rateLimit?: RateLimitModuleOptions }).rateLimit ?? {};
  const limits = constantLimits(route.rules);
  if (limits === undefined) {
    // Tier limits are functions of the request, resolved per request; a rule still needs its values.
    route.rules.forEach((rule, i) => {
      const missing =
        rule.limit === undefined && defaults.limit === undefined
          ? 'limit'
          : rule.windowMs === undefined && defaults.windowMs === undefined
            ? 'windowMs'
            : undefined;
      if (missing) missingDefault(site, `${route.rules.length === 1 ? '' : `rules[${i}].`}${missing}`);
    });
    return;
  }
  const resolved = resolveRouteRules(route.rules, limits, defaults, site);
  const smallest = Math.min(...resolved.map((rule) => rule.limit));
  if (typeof route.cost === 'number' && route.cost > smallest) {
    fail(site, 'cost', `option "cost" (${route.cost}) is above the smallest limit (${smallest}): no request could pass`);
  }
}
