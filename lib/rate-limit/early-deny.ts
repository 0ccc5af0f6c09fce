import { Injectable, type INestApplication, type NestMiddleware } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { EARLY_DENY_SEEN, requestLine, type EarlyDenials, type RawRequest } from './early-denials';
import { writeRateLimitHeaders } from './rate-limit.headers';
import { message } from '../core/messages';
import { RateLimitExceededException, RateLimitInputError } from './rate-limit.errors';
import { isPromiseLike, trackerOf } from './rate-limit.tracker';
import { RateLimiterService } from './rate-limit.service';

const JSON_TYPE = 'application/json; charset=utf-8';

type ExpressHandler = (req: RawRequest, res: RawResponse, next: (error?: unknown) => void) => void;

/** What the `onRequest` hook uses of Fastify's reply. */
interface FastifyReplyLike {
  header(name: string, value: string): unknown;
  code(status: number): FastifyReplyLike;
  type(contentType: string): FastifyReplyLike;
  send(body: string): unknown;
}

type FastifyHook = (request: RawRequest, reply: FastifyReplyLike, done: () => void) => void;

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
 * Install it ahead of Nest's own middleware in `main.ts` (the fastest: {@link RateLimitMiddleware.install}),
 * or apply it in a module's `configure` (it needs only the global RedisLuaModule):
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
   * Installs the middleware ahead of everything Nest registers on the HTTP server: on Express as the
   * first middleware (before the body parsers and Nest's router), on Fastify as an `onRequest` hook
   * (before routing and Nest's middleware layer). A flooded route then costs the other clients about
   * as little as a bare middleware would (docs/benchmarks.md). Call it in `main.ts` after
   * `NestFactory.create` and before `app.init()` / `app.listen()`; use it instead of
   * `consumer.apply(RateLimitMiddleware)`, not with it.
   *
   * @throws RateLimitInputError (field `app`) when the application's HTTP adapter is neither Express
   * nor Fastify. Installed after `app.init()` on Express, the middleware would come after Nest's
   * router: an `earlyDeny` route then fails its requests with a `RateLimitInputError` naming it.
   * @example
   * const app = await NestFactory.create(AppModule);
   * RateLimitMiddleware.install(app);
   * await app.listen(3000);
   */
  static install(app: INestApplication): void {
    const middleware = new RateLimitMiddleware(app.get(RateLimiterService, { strict: false }));
    const adapter = app.getHttpAdapter();
    const type = adapter.getType();
    if (type === 'express') {
      const express = adapter.getInstance() as { use(handler: ExpressHandler): unknown };
      express.use((req, res, next) => middleware.use(req, res, next));
    } else if (type === 'fastify') {
      const fastify = adapter.getInstance() as { addHook(name: 'onRequest', hook: FastifyHook): unknown };
      fastify.addHook('onRequest', (request, reply, done) => {
        const denial = middleware.denialOf(request, [request, reply, done]);
        if (!denial) return done();
        writeRateLimitHeaders(reply, denial.result, denial.route.rules, denial.route.headers);
        reply
          .code(429)
          .type(JSON_TYPE)
          .send(JSON.stringify(RateLimitExceededException.bodyOf(denial.result)));
      });
    } else {
      throw new RateLimitInputError(
        message('RateLimitMiddleware.install', `it supports the Express and Fastify adapters, not "${type}"`),
        'app',
      );
    }
  }

  /**
   * Ends the request with the recorded 429, or calls `next`.
   * @throws never: a key function that throws here lets the request through to the guard.
   * @example
   * consumer.apply(RateLimitMiddleware).forRoutes('*');
   */
  use(req: RawRequest, res: RawResponse, next: (error?: unknown) => void): void {
    const denial = this.denialOf(req, [req, res, next]);
    if (!denial) return next();
    writeRateLimitHeaders(res, denial.result, denial.route.rules, denial.route.headers);
    res.statusCode = 429;
    res.setHeader('Content-Type', JSON_TYPE);
    res.end(JSON.stringify(RateLimitExceededException.bodyOf(denial.result)));
  }

  /** Marks the request as seen (the guard checks it), then finds its client's recorded denial, if any. */
  private denialOf(req: RawRequest, args: unknown[]): ReturnType<EarlyDenials['denial']> {
    (req as Record<symbol, unknown>)[EARLY_DENY_SEEN] = true;
    if (req.raw) (req.raw as Record<symbol, unknown>)[EARLY_DENY_SEEN] = true;
    if (this.denials.size === 0) return undefined;
    const line = requestLine(req);
    const route = this.denials.route(line);
    if (!route) return undefined;
    try {
      const tracker = route.tracker(new ExecutionContextHost(args));
      if (isPromiseLike(tracker)) return undefined;
      return this.denials.denial(line, trackerOf(tracker, route.where));
    } catch {
      return undefined;
    }
  }
}
