import type { ExecutionContext } from '@nestjs/common';
import { message } from '../core/messages';
import { RateLimitInputError } from './rate-limit.errors';
import { LocalDenyCache } from './local-deny-cache';
import type { RateLimitHeaderOptions, RateLimitResult, ResolvedRateLimitRule } from './rate-limit.options';

/** Set on a request by {@link RateLimitMiddleware}: the guard checks that an `earlyDeny` route has it. */
export const EARLY_DENY_SEEN = Symbol('nest-redis-lua:early-deny-seen');

/** What the middleware needs of the raw request: Express's `req` or the Node request Fastify's middleware layer passes. */
export interface RawRequest {
  method?: string;
  originalUrl?: string;
  url?: string;
  raw?: RawRequest;
}

/** How an `earlyDeny` route identifies a client from the request alone, as its guard did. */
export interface EarlyRoute {
  /** The route's `key` function, or the guard's client-IP tracker when it has none. */
  tracker: (context: ExecutionContext) => string | number | Promise<string | number>;
  rules: readonly ResolvedRateLimitRule[];
  headers: RateLimitHeaderOptions | undefined;
  where: string;
  /** The route its decisions are reported under (`GET /users/:id`). */
  route: string;
}

/** `METHOD /path` of a request (no query string), as the middleware and the guard both see it. */
export function requestLine(req: RawRequest): string {
  const url = req.originalUrl ?? req.url ?? '';
  const query = url.indexOf('?');
  return `${req.method ?? ''} ${query < 0 ? url : url.slice(0, query)}`;
}

/**
 * Denials that {@link RateLimitMiddleware} may answer before Nest routes the request: recorded by
 * the guard when an `earlyDeny: true` route denies a client, per request line (method and path) and
 * client identity, until the denial's retry-after. Bounded like the limiter's local deny cache.
 * @internal
 */
export class EarlyDenials {
  private readonly denials: LocalDenyCache<{ result: RateLimitResult; route: EarlyRoute; key: string }>;
  private readonly routes: LocalDenyCache<EarlyRoute>;

  constructor(
    capacity: number,
    /** Reports each denial answered early (set when decisions are reported: see `RateLimitChecks.report`). */
    private readonly reportDenial: ((result: RateLimitResult, key: string, route: string) => void) | undefined,
  ) {
    this.denials = new LocalDenyCache(capacity);
    this.routes = new LocalDenyCache(capacity);
  }

  get size(): number {
    return this.denials.size;
  }

  /** The guard denied `tracker` (limiter key `key`) on the request `line` of an `earlyDeny` route. */
  record(line: string, tracker: string, key: string, result: RateLimitResult, route: EarlyRoute): void {
    this.routes.set(line, result.retryAfterMs, route);
    this.denials.set(`${line}\n${tracker}`, result.retryAfterMs, { result, route, key });
  }

  /** The route known for a request line, while one of its clients is denied. */
  route(line: string): EarlyRoute | undefined {
    return this.routes.get(line)?.value;
  }

  /** The denial of `tracker` on `line`, with its retry-after counted down, or undefined. */
  denial(line: string, tracker: string): { result: RateLimitResult; route: EarlyRoute } | undefined {
    const found = this.denials.get(`${line}\n${tracker}`);
    if (!found) return undefined;
    const { result, route, key } = found.value;
    this.reportDenial?.(result, key, route.route);
    return { result: { ...result, retryAfterMs: Math.ceil(found.leftMs) }, route };
  }

  /** Forgets every denial recorded for a client identity (`RateLimiterService.reset` of its key). */
  forget(text: string): void {
    this.denials.deleteContaining(text);
  }
}

/**
 * For the guard, on each request of an `earlyDeny` route: throws unless {@link RateLimitMiddleware}
 * saw the request (Express's request, or Fastify's raw one), so the option never silently does nothing.
 * @throws RateLimitInputError naming the route and how to apply the middleware.
 */
export function assertEarlyDenySeen(req: object | undefined, where: string): void {
  const seen = (r: unknown): boolean => (r as Record<symbol, unknown> | undefined)?.[EARLY_DENY_SEEN] === true;
  if (seen(req) || seen((req as RawRequest | undefined)?.raw)) return;
  throw new RateLimitInputError(
    message(
      '',
      `@RateLimit on ${where} has option "earlyDeny" but RateLimitMiddleware did not run for this request before the guard: call RateLimitMiddleware.install(app) in main.ts before app.listen(), or apply it in a module's configure(consumer), e.g. consumer.apply(RateLimitMiddleware).forRoutes('*'), or drop "earlyDeny"`,
    ),
    'earlyDeny',
  );
}
