import type { Logger } from '@nestjs/common';
import type { RedisLuaUnavailableError } from '../core/errors';
import { degradedResult } from './rate-limit.call';
import { RateLimitUnavailableError } from './rate-limit.errors';
import type { RateLimitFailMode, RateLimitModuleOptions, RateLimitResult, ResolvedRateLimitRule } from './rate-limit.options';

/**
 * What the limiter answers when Redis could not decide a hit (unreachable, later than `timeoutMs`,
 * refused): `open` an admitted result marked `degraded` (nothing counted), `closed` a
 * {@link RateLimitUnavailableError}, `local` the in-memory limiter's decision (marked `degraded`).
 * Reports each such call to `onUnavailable` and logs the first of an outage once.
 */
export class FailModes {
  private outage = false;

  constructor(
    private readonly logger: Logger,
    private readonly options: Pick<RateLimitModuleOptions, 'onUnavailable'>,
  ) {}

  /** Redis answered a call: a later failure starts a new outage (logged again). */
  answered(): void {
    this.outage = false;
  }

  /** The fail mode's answer, as a promise (never throws synchronously); `local` decides a `local` one. */
  settle(
    error: RedisLuaUnavailableError,
    key: string,
    failMode: RateLimitFailMode,
    rule: ResolvedRateLimitRule,
    local: () => RateLimitResult,
  ): Promise<RateLimitResult> {
    if (!this.outage) {
      this.outage = true;
      const how = failMode === 'local' ? 'are decided in this process' : `fail ${failMode}`;
      this.logger.warn(`Redis unavailable, rate limits ${how} until it answers again: ${error.message}`);
    }
    try {
      this.options.onUnavailable?.({ error, key, failMode });
    } catch {
      // A reporting hook must not change the decision.
    }
    if (failMode === 'closed') return Promise.reject(new RateLimitUnavailableError(key, failMode, error));
    return Promise.resolve(failMode === 'local' ? local() : degradedResult(rule));
  }
}
