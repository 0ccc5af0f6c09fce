import { Injectable, Logger, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { httpArgs, unavailableAnswer, type HeaderTarget, withoutStack } from '../core/http';
import { describeValue, message } from '../core/messages';
import { RouteCache } from '../core/route-metadata';
import { inputSite } from '../core/validation';
import { ipTracker, isPromiseLike, resolveValue, trackerOf } from './rate-limit.tracker';
import { RateLimitExceededException, RateLimitInputError, RateLimitUnavailableError } from './rate-limit.errors';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA, type RateLimitMetadata } from './rate-limit.metadata';
import type { ConsumeOptions, RateLimitResult, ResolvedRateLimitRule } from './rate-limit.options';
import { constantLimits, resolveRouteRules } from './rate-limit.rules';
import { writeRateLimitHeaders } from './rate-limit.headers';
import { RateLimiterService } from './rate-limit.service';
import { assertEarlyDenySeen, requestLine } from './early-denials';
import { refundUnlessCounted } from './count-only';
import { graphqlHttp, transportAnswer, wsAddress } from '../core/transports';

/** The parts of an Express or Fastify request the guard reads. */
export interface RateLimitRequest {
  ip?: string;
  /** The connection: its peer address identifies the client when `ip` is not an IP address. */
  socket?: { remoteAddress?: string };
  method?: string;
  /** Express: the matched route (`route.path` is the pattern, e.g. `/users/:id`). */
  route?: { path?: unknown };
  /** Fastify: the matched route (`routeOptions.url` is the pattern). */
  routeOptions?: { url?: unknown };
}

/** The parts of an Express response or a Fastify reply the guard writes. */
export type RateLimitResponse = HeaderTarget;

/** What the guard keeps per route (handler and class). */
interface RouteEntry {
  readonly skip: boolean;
  /** This is the base guard `@RateLimit` applied, and the route also has a subclass of it: the subclass counts. */
  readonly deferred: boolean;
  readonly route: RateLimitMetadata | undefined;
  /** `Controller.handler`, for error messages. */
  readonly where: string;
  readonly constant: boolean;
  rules?: ResolvedRateLimitRule[];
  /** The consume options of a unit-cost request (the same object every time). */
  readonly options: ConsumeOptions;
  /** When decisions are reported: the unit-cost options per route (a handler may serve several paths). */
  byRoute?: Map<string, ConsumeOptions>;
}

/** A handler or controller class, as the reflector takes them. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- what Nest's Reflector takes
type Named = Function;

/** Marks an HTTP request already counted, so that a guard registered several times counts it once. */
const COUNTED = Symbol('nest-redis-lua:rate-limit-counted');
/** The same for other transports: Nest hands every guard of one invocation the same context. */
const countedContexts = new WeakSet<ExecutionContext>();

/** Nest's GUARDS_METADATA: the guards `@UseGuards` put on a handler or a class. */
const GUARDS = '__guards__';

/** True if the route (handler or class) registers a subclass of RateLimitGuard with `@UseGuards`. */
function routeHasSubclassGuard(reflector: Reflector, targets: Named[]): boolean {
  return targets.some((target) =>
    (reflector.get<unknown[] | undefined>(GUARDS, target) ?? []).some((guard) => {
      const type = typeof guard === 'function' ? guard : (guard as object | null)?.constructor;
      return type !== RateLimitGuard && typeof type === 'function' && type.prototype instanceof RateLimitGuard;
    }),
  );
}

/**
 * Applies `@RateLimit` (which applies this guard itself) and the module's defaults (as `APP_GUARD`)
 * to requests: builds the key, asks {@link RateLimiterService}, writes the headers and answers 429
 * (or 503 with `failMode: 'closed'` when Redis is unavailable). Extend it and override the protected
 * methods for other transports.
 *
 * HTTP (Express and Fastify): key = client IP + HTTP method + route pattern. GraphQL resolvers
 * (Apollo, Mercurius): the client IP of the HTTP request in the GraphQL context + the resolver;
 * WebSocket gateways (socket.io, ws): the client's address + the handler. There a denial is the
 * transport's error (a GraphQL error with `extensions.code` `TOO_MANY_REQUESTS`, a `WsException`).
 * RPC handlers need a `key` function (checked at boot).
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    protected readonly limiter: RateLimiterService,
    protected readonly reflector: Reflector,
  ) {}

  private readonly logger = new Logger('RateLimit');

  /** Whether the fallback to the peer address (see {@link getTracker}) was logged. */
  private readonly ipWarning = { logged: false };

  /** Per handler and class: the route's metadata and, when its limits are constants, its rules. */
  private readonly routes = new RouteCache<RouteEntry>((handler, controller) => this.routeEntry(handler as Named, controller as Named));

  /**
   * Not an `async` function (bench: "@RateLimit route ÷ unguarded"): with constant limits and a
   * synchronous key (the common case) the only promise is the limiter's; each `await` of a plain
   * value would cost a turn of the microtask queue. Errors are always rejections.
   */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    try {
      const entry = this.routes.get(context);
      if (entry.skip || entry.deferred) return true;
      const http = this.getRequestResponse(context);
      const { req } = http;
      // A GraphQL call answers over the HTTP response of its request: the headers go there.
      const res = http.res ?? (context.getType<string>() === 'graphql' ? graphqlHttp(context).res : undefined);
      if (this.alreadyCounted(context, req)) return true;
      const skip = entry.route?.skip;
      if (skip === undefined) return this.activate(context, entry, req, res);
      const skipped = skip(context);
      if (isPromiseLike(skipped)) return skipped.then((answer) => this.afterSkip(answer, context, entry, req, res));
      return this.afterSkip(skipped, context, entry, req, res);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The route's `skip` answered: true exempts the request, false checks it; anything else is an error. */
  private afterSkip(
    skip: unknown,
    context: ExecutionContext,
    entry: RouteEntry,
    req: RateLimitRequest | undefined,
    res: RateLimitResponse | undefined,
  ): boolean | Promise<boolean> {
    if (skip === true) return true;
    if (skip !== false) {
      throw new RateLimitInputError(
        message(`@RateLimit on ${entry.where}`, `option "skip" must return true or false, got ${describeValue(skip)}`),
        'skip',
      );
    }
    return this.activate(context, entry, req, res);
  }

  /** A request to check: its key, cost and rules, then the limiter. */
  private activate(
    context: ExecutionContext,
    entry: RouteEntry,
    req: RateLimitRequest | undefined,
    res: RateLimitResponse | undefined,
  ): boolean | Promise<boolean> {
    try {
      const { route } = entry;
      if (route?.earlyDeny) assertEarlyDenySeen(req, entry.where);
      const key = route?.key?.(context);
      const tracker = route?.key ? (isPromiseLike(key) ? key : trackerOf(key, entry.where)) : this.getTracker(context, entry.where);
      const cost = typeof route?.cost === 'function' ? route.cost(context) : (route?.cost ?? 1);
      if (entry.rules === undefined || isPromiseLike(tracker) || isPromiseLike(cost)) {
        return this.activateLater(context, entry, tracker, cost, res);
      }
      return this.consume(context, entry, entry.rules, tracker, cost, res);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * True if another registration of this guard (or of a subclass) already counted this request, and
   * marks it counted. Nest hands every guard of one invocation the same context; the HTTP request is
   * marked too (a subclass may read the request differently, so both marks are checked).
   */
  private alreadyCounted(context: ExecutionContext, req: RateLimitRequest | undefined): boolean {
    const marked = req as Record<symbol, unknown> | undefined;
    if (countedContexts.has(context) || marked?.[COUNTED] === true) return true;
    countedContexts.add(context);
    if (marked) marked[COUNTED] = true;
    return false;
  }

  /** `canActivate` once the rules (first request of a route), the key or the cost needed awaiting. */
  private async activateLater(
    context: ExecutionContext,
    entry: RouteEntry,
    tracker: string | Promise<string | number>,
    cost: number | Promise<number>,
    res: RateLimitResponse | undefined,
  ): Promise<boolean> {
    const rules = entry.rules ?? (await this.rulesOf(context, entry));
    const key = typeof tracker === 'string' ? tracker : trackerOf(await tracker, entry.where);
    return this.consume(context, entry, rules, key, await cost, res);
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
    const options = this.limiter.reportsDecisions
      ? this.reportedOptions(context, entry, cost)
      : cost === 1
        ? entry.options
        : { cost, failMode: route?.failMode, timeoutMs: route?.timeoutMs };
    const key = this.generateKey(context, tracker);
    const decided = this.limiter.consume(key, rules, options).then(
      (result) => {
        // A ban is not answered early: an unblock must reach every instance within a second (see bans.ts).
        if (!result.allowed && route?.earlyDeny && !result.ban) this.recordEarly(context, entry, rules, tracker, key, result);
        const admitted = this.handleResult(result, rules, res);
        // A degraded (fail-open) hit recorded nothing: nothing to give back.
        if (route?.countOnly && !result.degraded) {
          refundUnlessCounted(res, route.countOnly, () => this.limiter.refund(key, rules, cost), this.logger, entry.where);
        }
        return admitted;
      },
      (err: unknown) => {
        if (err instanceof RateLimitUnavailableError) throw unavailableAnswer('Rate limit unavailable, try again later', err, res);
        throw err;
      },
    );
    // GraphQL and WebSocket answer a 429 or 503 with their own errors.
    if (context.getType() === 'http') return decided;
    return decided.catch((err: unknown) => {
      throw transportAnswer(context, err);
    });
  }

  /** The consume options with the request's route, which the limiter reports its decision under. */
  private reportedOptions(context: ExecutionContext, entry: RouteEntry, cost: number): ConsumeOptions {
    const routeId = this.routeOf(context);
    const { route } = entry;
    if (cost !== 1) return { cost, failMode: route?.failMode, timeoutMs: route?.timeoutMs, route: routeId };
    entry.byRoute ??= new Map();
    let options = entry.byRoute.get(routeId);
    if (!options) entry.byRoute.set(routeId, (options = { ...entry.options, route: routeId }));
    return options;
  }

  /** An `earlyDeny` route denied `tracker`: RateLimitMiddleware answers its next requests until it may pass. */
  private recordEarly(
    context: ExecutionContext,
    entry: RouteEntry,
    rules: ResolvedRateLimitRule[],
    tracker: string,
    key: string,
    result: RateLimitResult,
  ): void {
    const { req } = this.getRequestResponse(context);
    if (!req) return;
    const { where, route } = entry;
    const identify = route?.key ?? ((ctx: ExecutionContext) => this.getTracker(ctx, where));
    const early = { tracker: identify, rules, headers: this.limiter.options.headers, where, route: this.routeOf(context) };
    this.limiter.earlyDenials.record(requestLine(req), tracker, key, result, early);
  }

  /** The route's metadata, read on its first request (see {@link RouteCache}). */
  private routeEntry(handler: Named, controller: Named): RouteEntry {
    const targets = [handler, controller];
    const route = this.reflector.getAllAndOverride<RateLimitMetadata | undefined>(RATE_LIMIT_METADATA, targets);
    const defaults = this.limiter.options;
    const skip =
      this.reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT_METADATA, targets) === true ||
      (!route && (defaults.limit === undefined || defaults.windowMs === undefined));
    return {
      skip,
      deferred: this.constructor === RateLimitGuard && routeHasSubclassGuard(this.reflector, targets),
      route,
      where: `${controller.name}.${handler.name}`,
      // Constant limits (no tier function) and the built-in resolveRules: resolved once, on first use.
      constant: constantLimits(route?.rules ?? [{}]) !== undefined && this.resolveRules === RateLimitGuard.prototype.resolveRules,
      options: { cost: 1, failMode: route?.failMode, timeoutMs: route?.timeoutMs },
    };
  }

  /** The rules of one request; kept on the entry when they cannot change between requests. */
  private async rulesOf(context: ExecutionContext, entry: RouteEntry): Promise<ResolvedRateLimitRule[]> {
    const rules = await this.resolveRules(context, entry.route, entry.where);
    // The same array on every request: the limiter then reuses its validated plan for it.
    if (entry.constant) entry.rules = rules;
    return rules;
  }

  /** The request and response of an HTTP context; both undefined elsewhere. */
  protected getRequestResponse(context: ExecutionContext): { req?: RateLimitRequest; res?: RateLimitResponse } {
    return httpArgs<RateLimitRequest, RateLimitResponse>(context);
  }

  /**
   * Who is limited when the route gives no `key`: the client IP, normalized (see the README, "Client
   * IPs"): IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its `ipv6Subnet` network. When `req.ip` is not
   * an IP address (a proxy that is trusted but wrote garbage in X-Forwarded-For) the connection's
   * peer address counts instead, so that forged values cannot open new buckets; a warning is logged
   * once. A GraphQL call: the HTTP request in its context (`req`, or Mercurius's `reply.request`);
   * a WebSocket message: its client's address (socket.io's handshake, a `ws` client's socket).
   * @throws RateLimitInputError in an RPC context, a GraphQL context without the request, or when no
   *   address is an IP address.
   */
  protected getTracker(context: ExecutionContext, where: string): string {
    const type = context.getType<string>();
    const req =
      type === 'http'
        ? this.getRequestResponse(context).req
        : type === 'graphql'
          ? graphqlHttp(context).req
          : type === 'ws'
            ? { ip: wsAddress(context) }
            : undefined;
    if (!req) {
      const missing = type === 'graphql' ? 'whose GraphQL context holds no HTTP request ("req")' : 'which has no client IP';
      throw new RateLimitInputError(
        message(
          '',
          `@RateLimit on ${where} runs in a "${type}" context ${missing}: give a "key" function, e.g. @RateLimit({ ..., key: (ctx) => ... })`,
        ),
        'key',
      );
    }
    return ipTracker(req, where, this.limiter.options.ipv6Subnet, this.ipWarning);
  }

  /** The limiter key: the tracker plus the route identity (HTTP method + route pattern, or the handler). */
  /**
   * The route of a request: HTTP method and route pattern (`GET /users/:id`), or the transport and
   * handler (`graphql Resolver.field`) elsewhere. Part of the limiter key, and what decisions are reported under.
   */
  private routeOf(context: ExecutionContext): string {
    const { req } = this.getRequestResponse(context);
    const routePath = req?.route?.path ?? req?.routeOptions?.url;
    return req && typeof routePath === 'string'
      ? `${req.method ?? ''} ${routePath}`
      : `${context.getType()} ${context.getClass().name}.${context.getHandler().name}`;
  }

  protected generateKey(context: ExecutionContext, tracker: string): string {
    return `${tracker}\n${this.routeOf(context)}`;
  }

  /**
   * Writes the headers (IETF `RateLimit-Policy` / `RateLimit`, optionally the `X-RateLimit-*` ones,
   * `Retry-After` when denied).
   * @throws RateLimitExceededException (429) when the hit was denied.
   */
  protected handleResult(result: RateLimitResult, rules: readonly ResolvedRateLimitRule[], res: RateLimitResponse | undefined): boolean {
    // A degraded admission counted nothing in Redis: no quota to report. A denial (`failMode: 'local'`) says when to retry.
    if (res && (!result.degraded || !result.allowed)) writeRateLimitHeaders(res, result, rules, this.limiter.options.headers);
    if (!result.allowed) throw withoutStack(() => new RateLimitExceededException(result));
    return true;
  }

  /**
   * The route's rules with tier functions evaluated and module defaults filled in, checked.
   * @throws RateLimitInputError when a rule lacks a limit or window and the module gives no default.
   */
  protected async resolveRules(
    context: ExecutionContext,
    route: RateLimitMetadata | undefined,
    where: string,
  ): Promise<ResolvedRateLimitRule[]> {
    const declared = route?.rules ?? [{}];
    const limits = await Promise.all(declared.map((rule) => (rule.limit === undefined ? undefined : resolveValue(rule.limit, context))));
    return resolveRouteRules(declared, limits, this.limiter.options, inputSite(`@RateLimit on ${where}`, RateLimitInputError));
  }
}
