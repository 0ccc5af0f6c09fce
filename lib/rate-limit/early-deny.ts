import { Injectable, type NestMiddleware } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { EARLY_DENY_SEEN, requestLine, type EarlyDenials, type RawRequest } from './early-denials';
import { writeRateLimitHeaders } from './rate-limit.headers';
import { RateLimitExceededException } from './rate-limit.errors';
import { isPromiseLike, trackerOf } from './rate-limit.tracker';
import { RateLimiterService } from './rate-limit.service';

/** The Node response both Express and Fastify's middleware layer hand to a middleware. */
interface RawResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/**
 * Answers a client that an `@RateLimit({ ..., earlyDeny: true })` route has already denied with the
 * same 429 (status, headers, JSON body) before Nest routes the request: no guard, pipe or Redis call
 * while it stays denied, which keeps a flood from taking the other clients' capacity. It knows only
 * denials its own process's guard recorded (per process, like the local deny cache); every other
 * request goes on unchanged.
 *
 * Apply it in a module's `configure` (it needs only the global RedisLuaModule):
 *
 * ```ts
 * export class AppModule implements NestModule {
 *   configure(consumer: MiddlewareConsumer) {
 *     consumer.apply(RateLimitMiddleware).forRoutes('*');
 *   }
 * }
 * ```
 *
 * The route's key must come from the request as it arrives (the client IP, a header, an API key in
 * the URL): the middleware computes it before any guard has run, so a key read from `req.user` would
 * be another identity here. An `earlyDeny` route whose request did not pass this middleware fails the
 * request with a `RateLimitInputError` naming it (instead of silently doing nothing).
 */
@Injectable()
export class RateLimitMiddleware implements NestMiddleware {
  private readonly denials: EarlyDenials;

  constructor(limiter: RateLimiterService) {
    this.denials = limiter.earlyDenials;
  }

  /**
   * Ends the request with the recorded 429, or calls `next`.
   * @throws never: a key function that throws here lets the request through to the guard.
   * @example
   * consumer.apply(RateLimitMiddleware).forRoutes('*');
   */
  use(req: RawRequest, res: RawResponse, next: (error?: unknown) => void): void {
    (req as Record<symbol, unknown>)[EARLY_DENY_SEEN] = true;
    if (req.raw) (req.raw as Record<symbol, unknown>)[EARLY_DENY_SEEN] = true;
    if (this.denials.size === 0) return next();
    const line = requestLine(req);
    const route = this.denials.route(line);
    let tracker: string | number | Promise<string | number> | undefined;
    try {
      tracker = route?.tracker(new ExecutionContextHost([req, res, next]));
    } catch {
      tracker = undefined;
    }
    if (!route || tracker === undefined || isPromiseLike(tracker)) return next();
    let key: string;
    try {
      key = trackerOf(tracker, route.where);
    } catch {
      return next();
    }
    const denial = this.denials.denial(line, key);
    if (!denial) return next();
    writeRateLimitHeaders(res, denial.result, denial.route.rules, denial.route.headers);
    res.statusCode = 429;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(RateLimitExceededException.bodyOf(denial.result)));
  }
}
