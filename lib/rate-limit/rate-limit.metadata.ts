import type { RateLimitRouteOptions, RateLimitRouteRule } from './rate-limit.options';

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
