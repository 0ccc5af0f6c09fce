import { retryAfterSeconds, setResponseHeader, type HeaderTarget } from '../core/http';
import type { RateLimitHeaderOptions, RateLimitResult, ResolvedRateLimitRule } from './rate-limit.options';

/**
 * The rate-limit headers of a decided request: IETF `RateLimit-Policy` and `RateLimit`
 * (draft-ietf-httpapi-ratelimit-headers) unless `ietf: false`, the `X-RateLimit-*` ones with
 * `legacy: true`, and `Retry-After` (whole seconds, at least 1) when the hit was denied.
 */
export function writeRateLimitHeaders(
  res: HeaderTarget,
  result: RateLimitResult,
  rules: readonly ResolvedRateLimitRule[],
  headers: RateLimitHeaderOptions = {},
): void {
  const resetSeconds = Math.ceil(result.resetMs / 1000);
  if (headers.ietf !== false) {
    setResponseHeader(res, 'RateLimit-Policy', policyOf(rules));
    setResponseHeader(res, 'RateLimit', `"${result.rule.name}";r=${result.remaining};t=${resetSeconds}`);
  }
  if (headers.legacy) {
    setResponseHeader(res, 'X-RateLimit-Limit', String(result.limit));
    setResponseHeader(res, 'X-RateLimit-Remaining', String(result.remaining));
    setResponseHeader(res, 'X-RateLimit-Reset', String(resetSeconds));
  }
  if (!result.allowed) setResponseHeader(res, 'Retry-After', String(retryAfterSeconds(result.retryAfterMs)));
}

/** `RateLimit-Policy` of a rules array: the same for every request of a route with constant limits. */
const policies = new WeakMap<readonly ResolvedRateLimitRule[], string>();

function policyOf(rules: readonly ResolvedRateLimitRule[]): string {
  let policy = policies.get(rules);
  if (policy === undefined) {
    policy = rules.map((r) => `"${r.name}";q=${r.limit};w=${Math.ceil(r.windowMs / 1000)}`).join(', ');
    policies.set(rules, policy);
  }
  return policy;
}
