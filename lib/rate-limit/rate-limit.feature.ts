import { TRANSPORT_NAMES, type BootRoute, type RedisLuaFeature } from '../module/feature';
import { fail, inputSite } from '../core/validation';
import { RateLimitInputError } from './rate-limit.errors';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA, type RateLimitMetadata } from './rate-limit.metadata';
import { DEFAULT_RATE_LIMIT_ALGORITHM, type RateLimitModuleOptions } from './rate-limit.options';
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
  describeRoute: describeRateLimitRoute,
};

/** The handler's `@RateLimit` (handler over class) and the module defaults; undefined when it is not limited or skips. */
function limitedRoute({
  handler,
  controller,
  reflector,
  options,
}: BootRoute): { route: RateLimitMetadata; defaults: RateLimitModuleOptions } | undefined {
  const targets = [handler, controller];
  if (reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT_METADATA, targets)) return undefined;
  const route = reflector.getAllAndOverride<RateLimitMetadata | undefined>(RATE_LIMIT_METADATA, targets);
  return route && { route, defaults: (options as { rateLimit?: RateLimitModuleOptions }).rateLimit ?? {} };
}

/** `3 / 60000 ms sliding-log "default"; key: client IP` for the boot report. */
function describeRateLimitRoute(boot: BootRoute): string | undefined {
  const limited = limitedRoute(boot);
  if (!limited) return undefined;
  const { route, defaults } = limited;
  const rules = route.rules.map((rule) => {
    const limit = typeof rule.limit === 'function' ? 'tier' : (rule.limit ?? defaults.limit);
    const name = rule.name === undefined ? '' : ` "${rule.name}"`;
    return `${limit} / ${rule.windowMs ?? defaults.windowMs} ms ${rule.algorithm ?? defaults.algorithm ?? DEFAULT_RATE_LIMIT_ALGORITHM}${name}`;
  });
  const cost = route.cost === undefined ? '' : `; cost ${typeof route.cost === 'function' ? 'per request' : route.cost}`;
  return `${rules.join(' + ')}; key: ${route.key ? 'key function' : 'client IP'}${cost}${route.earlyDeny ? '; earlyDeny' : ''}${route.countOnly ? `; counts ${route.countOnly} only` : ''}${route.skip ? '; skip function' : ''}`;
}

/**
 * Checks a `@RateLimit` route with the module's defaults filled in: outside HTTP it needs a `key`
 * function and cannot use `earlyDeny`; a rule without `limit` or `windowMs` needs a default in `forRoot({ rateLimit })`; rules with fixed limits must not repeat each
 * other, and a fixed `cost` must not exceed the smallest limit. Values given in `@RateLimit` itself
 * were already checked when the class was declared.
 */
function checkRateLimitRoute(boot: BootRoute): void {
  const limited = limitedRoute(boot);
  if (!limited) return;
  const { route, defaults } = limited;
  const { where, transport } = boot;
  const site = inputSite(`@RateLimit on ${where}`, RateLimitInputError);
  if (transport === 'rpc' && route.key === undefined) {
    fail(
      site,
      'key',
      `a ${TRANSPORT_NAMES[transport]} has no client IP to limit by: give a "key" function, e.g. @RateLimit({ ..., key: (ctx) => ... })`,
    );
  }
  if (route.countOnly && transport !== 'http') {
    fail(site, 'countOnly', `a ${TRANSPORT_NAMES[transport]} has no response status to count by: drop "countOnly" (it is for HTTP routes)`);
  }
  if (route.earlyDeny && transport !== 'http') {
    fail(site, 'earlyDeny', `a ${TRANSPORT_NAMES[transport]} does not pass RateLimitMiddleware: drop "earlyDeny" (it is for HTTP routes)`);
  }
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
