import { Injectable, ServiceUnavailableException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { clientIdentity } from './client-ip';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA, type RateLimitMetadata } from './rate-limit.decorator';
import { RateLimitExceededException, RateLimitUnavailableError } from './rate-limit.errors';
import {
  resolveRules,
  type ContextValue,
  type RateLimitResult,
  type RateLimitRule,
  type ResolvedRateLimitRule,
} from './rate-limit.options';
import { RateLimiterService, type ConsumeOptions } from './rate-limit.service';

/** The parts of an Express or Fastify request the guard reads. */
export interface RateLimitRequest {
  ip?: string;
  method?: string;
  /** Express: the matched route (`route.path` is the pattern, e.g. `/users/:id`). */
  route?: { path?: unknown };
  /** Fastify: the matched route (`routeOptions.url` is the pattern). */
  routeOptions?: { url?: unknown };
}

/** The parts of an Express response or a Fastify reply the guard writes. */
export interface RateLimitResponse {
  header?: (name: string, value: string) => unknown;
  setHeader?: (name: string, value: string) => unknown;
}

/** What the guard keeps per route (handler and class). */
interface RouteEntry {
  readonly skip: boolean;
  readonly route: RateLimitMetadata | undefined;
  /** `Controller.handler`, for error messages. */
  readonly where: string;
  readonly constant: boolean;
  rules?: ResolvedRateLimitRule[];
  /** The consume options of a unit-cost request (the same object every time). */
  readonly options: ConsumeOptions;
}

/** Marks a request already counted, so a guard registered twice (global and local) counts once. */
const COUNTED = Symbol('nest-redis-lua:rate-limit-counted');

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * Applies `@RateLimit` (and the module's defaults, e.g. as `APP_GUARD`) to requests: builds the key,
 * asks {@link RateLimiterService}, writes the headers and answers 429 (or 503 with `failMode: 'closed'`
 * when Redis is unavailable). Extend it and override the protected methods for other transports.
 *
 * HTTP (Express and Fastify): key = client IP + HTTP method + route pattern. Other contexts (RPC,
 * WebSocket, GraphQL) are limited when the route gives a `key` function; without one the first call
 * throws an error saying so.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    protected readonly limiter: RateLimiterService,
    protected readonly reflector: Reflector,
  ) {}

  /** Per handler and class: the route's metadata and, when its limits are constants, its rules. */
  private readonly routes = new WeakMap<object, Map<object, RouteEntry>>();

  /**
   * Not an `async` function: with constant limits and a synchronous key (the common case) the only
   * promise is the limiter's; each `await` of a plain value would cost a turn of the microtask queue.
   * Errors are always rejections.
   */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    try {
      const entry = this.routeEntry(context);
      if (entry.skip) return true;
      const { route } = entry;
      const { req, res } = this.getRequestResponse(context);
      if (req) {
        const marked = req as Record<symbol, unknown>;
        if (marked[COUNTED]) return true;
        marked[COUNTED] = true;
      }
      const tracker = route?.key ? route.key(context) : this.getTracker(context, entry.where);
      const cost = typeof route?.cost === 'function' ? route.cost(context) : (route?.cost ?? 1);
      if (entry.rules === undefined || isPromiseLike(tracker) || isPromiseLike(cost)) {
        return this.activateLater(context, entry, tracker, cost, res);
      }
      return this.consume(context, entry, entry.rules, tracker, cost, res);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** `canActivate` once the rules (first request of a route), the key or the cost needed awaiting. */
  private async activateLater(
    context: ExecutionContext,
    entry: RouteEntry,
    tracker: string | Promise<string>,
    cost: number | Promise<number>,
    res: RateLimitResponse | undefined,
  ): Promise<boolean> {
    const rules = entry.rules ?? (await this.rulesOf(context, entry));
    return this.consume(context, entry, rules, await tracker, await cost, res);
  }

  private consume(
    context: ExecutionContext,
    entry: RouteEntry,
    rules: ResolvedRateLimitRule[],
    tracker: string,
    cost: number,
    res: RateLimitResponse | undefined,
  ): Promise<boolean> {
    const { route } = entry;
    const options = cost === 1 ? entry.options : { cost, failMode: route?.failMode, timeoutMs: route?.timeoutMs };
    return this.limiter.consume(this.generateKey(context, tracker), rules, options).then(
      (result) => this.handleResult(result, rules, res),
      (err: unknown) => {
        if (err instanceof RateLimitUnavailableError) throw new ServiceUnavailableException('Rate limit unavailable, try again later');
        throw err;
      },
    );
  }

  /**
   * The route's metadata, read once per handler and class (the reflector walks metadata on every
   * call otherwise). Metadata is static once the application is up.
   */
  private routeEntry(context: ExecutionContext): RouteEntry {
    const handler = context.getHandler();
    const cls = context.getClass();
    let byClass = this.routes.get(handler);
    const known = byClass?.get(cls);
    if (known) return known;
    const targets = [handler, cls];
    const route = this.reflector.getAllAndOverride<RateLimitMetadata | undefined>(RATE_LIMIT_METADATA, targets);
    const defaults = this.limiter.options;
    const skip =
      this.reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT_METADATA, targets) === true ||
      (!route && (defaults.limit === undefined || defaults.windowMs === undefined));
    const entry: RouteEntry = {
      skip,
      route,
      where: `${cls.name}.${handler.name}`,
      // Constant limits (no tier function) and the built-in resolveRules: resolved once, on first use.
      constant:
        (route?.rules ?? [{}]).every((rule) => typeof rule.limit !== 'function') &&
        this.resolveRules === RateLimitGuard.prototype.resolveRules,
      options: { cost: 1, failMode: route?.failMode, timeoutMs: route?.timeoutMs },
    };
    if (!byClass) {
      byClass = new Map();
      this.routes.set(handler, byClass);
    }
    byClass.set(cls, entry);
    return entry;
  }

  /** The rules of one request; kept on the entry when they cannot change between requests. */
  private async rulesOf(context: ExecutionContext, entry: RouteEntry): Promise<ResolvedRateLimitRule[]> {
    const rules = await this.resolveRules(context, entry.route, entry.where);
    // The same array on every request: the limiter then reuses its validated plan for it.
    if (entry.constant) entry.rules = rules;
    return rules;
  }

  /**
   * The request and response of an HTTP context; both undefined elsewhere. Read as the context's
   * arguments 0 and 1 (what `switchToHttp()` returns, without the three functions it creates each time).
   */
  protected getRequestResponse(context: ExecutionContext): { req?: RateLimitRequest; res?: RateLimitResponse } {
    if (context.getType() !== 'http') return {};
    return { req: context.getArgByIndex<RateLimitRequest>(0), res: context.getArgByIndex<RateLimitResponse>(1) };
  }

  /** Who is limited when the route gives no `key`: the client IP (IPv6 masked to /64). */
  protected getTracker(context: ExecutionContext, where: string): string {
    const { req } = this.getRequestResponse(context);
    if (!req) {
      throw new Error(
        `nest-redis-lua: @RateLimit on ${where} runs in a "${context.getType()}" context, which has no client IP: give a "key" function, e.g. @RateLimit({ ..., key: (ctx) => ... })`,
      );
    }
    if (typeof req.ip !== 'string' || req.ip === '') {
      throw new Error(`nest-redis-lua: @RateLimit on ${where}: the request has no "ip"; give a "key" function`);
    }
    return clientIdentity(req.ip);
  }

  /** The limiter key: the tracker plus the route identity (HTTP method + route pattern, or the handler). */
  protected generateKey(context: ExecutionContext, tracker: string): string {
    const { req } = this.getRequestResponse(context);
    const routePath = req?.route?.path ?? req?.routeOptions?.url;
    const routeId =
      req && typeof routePath === 'string'
        ? `${req.method ?? ''} ${routePath}`
        : `${context.getType()} ${context.getClass().name}.${context.getHandler().name}`;
    return `${tracker}\n${routeId}`;
  }

  /** Writes the headers; throws 429 when denied. */
  protected handleResult(result: RateLimitResult, rules: readonly ResolvedRateLimitRule[], res: RateLimitResponse | undefined): boolean {
    if (res && !result.degraded) {
      const headers = this.limiter.options.headers ?? {};
      const resetSeconds = Math.ceil(result.resetMs / 1000);
      if (headers.ietf !== false) {
        setHeader(res, 'RateLimit-Policy', policyOf(rules));
        setHeader(res, 'RateLimit', `"${result.rule.name}";r=${result.remaining};t=${resetSeconds}`);
      }
      if (headers.legacy) {
        setHeader(res, 'X-RateLimit-Limit', String(result.limit));
        setHeader(res, 'X-RateLimit-Remaining', String(result.remaining));
        setHeader(res, 'X-RateLimit-Reset', String(resetSeconds));
      }
      if (!result.allowed) setHeader(res, 'Retry-After', String(Math.max(1, Math.ceil(result.retryAfterMs / 1000))));
    }
    if (!result.allowed) throw tooManyRequests(result);
    return true;
  }

  /** The route's rules with tier functions evaluated and module defaults filled in, validated. */
  protected async resolveRules(
    context: ExecutionContext,
    route: RateLimitMetadata | undefined,
    where: string,
  ): Promise<ResolvedRateLimitRule[]> {
    const defaults = this.limiter.options;
    const declared = route?.rules ?? [{}];
    const rules: RateLimitRule[] = [];
    for (const [i, rule] of declared.entries()) {
      const limit = rule.limit === undefined ? defaults.limit : await resolveValue(rule.limit, context);
      const windowMs = rule.windowMs ?? defaults.windowMs;
      const at = declared.length === 1 ? '' : `rules[${i}].`;
      if (limit === undefined || windowMs === undefined) {
        throw new TypeError(
          `nest-redis-lua: @RateLimit on ${where}: option "${at}${limit === undefined ? 'limit' : 'windowMs'}" is missing and forRoot({ rateLimit }) has no default`,
        );
      }
      rules.push({ limit, windowMs, algorithm: rule.algorithm, name: rule.name });
    }
    return resolveRules(rules, `@RateLimit on ${where}`, defaults);
  }
}

async function resolveValue<T>(value: ContextValue<T>, context: ExecutionContext): Promise<T> {
  return typeof value === 'function' ? (value as (c: ExecutionContext) => T | Promise<T>)(context) : value;
}

/** Node's `setHeader` where there is one (Express: its `header()` only adds coercions), else Fastify's `header()`. */
function setHeader(res: RateLimitResponse, name: string, value: string): void {
  if (typeof res.setHeader === 'function') res.setHeader(name, value);
  else res.header?.(name, value);
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

/**
 * The 429 exception, built without capturing a stack trace: it is an answer to the client, not a
 * fault (Nest's exception filter does not log it), and capturing the stack was the costliest step of
 * a denied request in the bench profile. Everything else about the exception is unchanged.
 */
function tooManyRequests(result: RateLimitResult): RateLimitExceededException {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RateLimitExceededException(result);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
