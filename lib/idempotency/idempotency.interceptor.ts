import { createHash } from 'node:crypto';
import {
  HttpException,
  Injectable,
  Logger,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { from, lastValueFrom, type Observable } from 'rxjs';
import { RedisLuaUnavailableError } from '../core/errors';
import {
  CLIENT_CLOSED_REQUEST,
  onClientGone,
  retryAfterSeconds,
  setResponseHeader,
  unavailableAnswer,
  withoutStack,
  type HeaderTarget,
} from '../core/http';
import { RouteCache } from '../core/route-metadata';
import {
  IdempotencyConflictError,
  IdempotencyConflictException,
  IdempotencyKeyException,
  IdempotencyMismatchError,
  IdempotencyMismatchException,
} from './idempotency.errors';
import { IDEMPOTENCY_KEY, type IdempotentExchange, type IdempotentOptions } from './idempotency.options';
import { IdempotencyService, type ResultCodec } from './idempotency.service';

/** Where a manual handler's {@link IdempotentExchange} waits on the request (`@CurrentIdempotency()`). @internal */
export const IDEMPOTENT_EXCHANGE = Symbol('nest-redis-lua:idempotent-exchange');

/** The metadata `@Idempotent()` stores on a handler. @internal */
export const IDEMPOTENT_METADATA = 'nest-redis-lua:idempotent';

/** What `@Idempotent()` keeps of a route. @internal */
export interface IdempotentMetadata {
  readonly options: IdempotentOptions;
  /** The key's header as Node and Fastify name request headers: lower case. */
  readonly header: string;
  /** `Controller.method`, for messages. */
  readonly where: string;
}

/** An answer as stored and replayed: status, selected headers, body, and whether it was a thrown HttpException. */
interface StoredAnswer {
  s: number;
  h: Record<string, string>;
  b: unknown;
  e?: 1;
}

/** The request and response the interceptor reads (Express and Fastify alike). */
interface HttpRequest {
  method: string;
  url: string;
  originalUrl?: string;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}
interface HttpResponse extends HeaderTarget {
  getHeader?: (name: string) => unknown;
}

/** What the handler threw (other than an HttpException), carried through the idempotent run unchanged. */
class HandlerError {
  constructor(readonly error: unknown) {}
}

const DEFAULT_STORED_HEADERS = ['content-type', 'location'];

/** The default of `storeStatus`: 2xx, and 4xx other than 409 (a conflict) and 429 (a rate limit), which a retry may pass. */
function storableStatus(status: number): boolean {
  return (status >= 200 && status < 300) || (status >= 400 && status < 500 && status !== 409 && status !== 429);
}

/** Method, URL and a SHA-256 of the JSON body. */
function defaultFingerprint(request: unknown): string {
  const req = request as HttpRequest;
  const body = createHash('sha256')
    .update(JSON.stringify(req.body ?? null))
    .digest('base64url');
  return `${req.method} ${req.originalUrl ?? req.url} ${body}`;
}

/** True for bodies that JSON does not give back as Nest sent them (buffers, streams, files). */
function unstorableBody(body: unknown): boolean {
  return (
    Buffer.isBuffer(body) ||
    body instanceof StreamableFile ||
    body instanceof Uint8Array ||
    (typeof body === 'object' && body !== null && typeof (body as { pipe?: unknown }).pipe === 'function')
  );
}

/**
 * Applied by `@Idempotent()`: runs the handler once per idempotency key (see
 * {@link IdempotencyService}) and replays its stored answer — status, selected headers, body — to
 * retries, with `Idempotent-Replayed: true`. A missing key is a 400 (when required), a request still
 * running a 409 with `Retry-After`, another payload with the key a 422, Redis unavailable a 503.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger('RedisLua');
  private readonly routes = new RouteCache<IdempotentMetadata | null>(
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- what Nest's Reflector takes
    (handler) => this.reflector.get<IdempotentMetadata | undefined>(IDEMPOTENT_METADATA, handler as Function) ?? null,
  );
  private readonly statuses = new RouteCache<number | undefined>(
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- what Nest's Reflector takes
    (handler) => this.reflector.get<number | undefined>(HTTP_CODE_METADATA, handler as Function),
  );

  constructor(
    private readonly reflector: Reflector,
    private readonly idempotency: IdempotencyService,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const meta = this.routes.get(context);
    if (!meta || context.getType() !== 'http') return next.handle();
    return from(this.handle(context, next, meta));
  }

  private async handle(context: ExecutionContext, next: CallHandler, meta: IdempotentMetadata): Promise<unknown> {
    const req = context.getArgByIndex<HttpRequest>(0);
    const res = context.getArgByIndex<HttpResponse>(1);
    const { options } = meta;
    const key = req.headers[meta.header];
    if (key === undefined || key === '') {
      if (options.required === false) return lastValueFrom(next.handle(), { defaultValue: undefined });
      throw withoutStack(() => new IdempotencyKeyException(`This request needs an ${options.header ?? 'Idempotency-Key'} header`));
    }
    if (typeof key !== 'string' || key.length > IDEMPOTENCY_KEY.maxLength || !key.isWellFormed()) {
      throw withoutStack(
        () =>
          new IdempotencyKeyException(
            `The ${options.header ?? 'Idempotency-Key'} header must be one value of at most ${IDEMPOTENCY_KEY.maxLength} characters`,
          ),
      );
    }
    const scope = options.scope ? await options.scope(context) : undefined;
    const fingerprint = (options.fingerprint ?? defaultFingerprint)(req);
    const settings = this.idempotency.settings(key, fingerprint, {
      scope: scope === undefined || scope === '' ? undefined : String(scope),
      ttlMs: options.ttlMs,
      leaseMs: options.leaseMs,
      waitMs: options.waitMs,
      maxResultBytes: options.maxBodyBytes,
    });
    const status = this.statuses.get(context) ?? (req.method === 'POST' ? 201 : 200);
    const stored = options.headers ?? DEFAULT_STORED_HEADERS;
    let outcome: { value: StoredAnswer; replayed: boolean };
    /** The HttpException this request's own run threw: thrown again as it is. */
    let thrown: HttpException | undefined;
    // A retry that waits for the first request (waitMs) stops waiting when its client goes away.
    const gone = new AbortController();
    const stopWatching = options.waitMs
      ? onClientGone(context, () => gone.abort(new HttpException('Client closed request', CLIENT_CLOSED_REQUEST)))
      : undefined;
    try {
      outcome = await this.idempotency.execute<StoredAnswer>(
        settings,
        async () => {
          try {
            if (options.manual) return await this.runManual(req, key, next);
            const body = await lastValueFrom(next.handle(), { defaultValue: undefined });
            return { s: status, h: this.pickHeaders(res, stored), b: body };
          } catch (err) {
            // A 4xx the handler threw is an answer like another: stored (if its status is) and replayed.
            if (err instanceof HttpException) {
              thrown = err;
              return { s: err.getStatus(), h: {}, b: err.getResponse(), e: 1 };
            }
            // Marked as the handler's, so that it is not taken for a failure of the claim below.
            throw new HandlerError(err);
          }
        },
        this.codec(meta),
        stopWatching ? gone.signal : undefined,
      );
    } catch (err) {
      if (err instanceof HandlerError) throw err.error;
      if (err instanceof IdempotencyConflictError) {
        const retryAfter = retryAfterSeconds(err.retryAfterMs);
        setResponseHeader(res, 'Retry-After', String(retryAfter));
        throw withoutStack(() => new IdempotencyConflictException(retryAfter, { cause: err }));
      }
      if (err instanceof IdempotencyMismatchError) throw withoutStack(() => new IdempotencyMismatchException({ cause: err }));
      if (err instanceof RedisLuaUnavailableError) {
        // The handler has not run: a claim (or a wait) failed before it.
        if (options.failMode === 'open') {
          this.logger.warn(
            `@Idempotent on ${meta.where}: Redis is unavailable, the request runs without its idempotency key (failMode 'open'): ${err.message}`,
          );
          return lastValueFrom(next.handle(), { defaultValue: undefined });
        }
        throw unavailableAnswer('Idempotency unavailable: Redis did not answer; retry later', err, res);
      }
      throw err;
    } finally {
      stopWatching?.();
    }
    if (thrown && !outcome.replayed) throw thrown;
    const answer = outcome.value;
    if (options.manual) {
      // The handler sent its own answer; a replay is sent here, through the HTTP adapter.
      if (outcome.replayed) this.sendReplay(res, answer);
      return undefined;
    }
    if (outcome.replayed) {
      for (const [name, value] of Object.entries(answer.h)) setResponseHeader(res, name, value);
      setResponseHeader(res, 'Idempotent-Replayed', 'true');
    }
    // A thrown answer is thrown again (Nest's exception filter sends it as the first time); so is a
    // replayed one whose status is not the route's own.
    if (answer.e === 1 || answer.s !== status) throw new HttpException(answer.b as string | Record<string, unknown>, answer.s);
    return answer.b;
  }

  /**
   * Runs a manual handler (it writes its own response) with its exchange on the request; resolves
   * with what it recorded, or an answer that is not stored (`s` 0) when it recorded nothing.
   */
  private async runManual(req: HttpRequest, key: string, next: CallHandler): Promise<StoredAnswer> {
    let recorded: StoredAnswer | undefined;
    const exchange: IdempotentExchange = {
      key,
      store: (answer) => {
        recorded = { s: answer.status, h: { ...answer.headers }, b: answer.body };
      },
    };
    (req as unknown as Record<symbol, unknown>)[IDEMPOTENT_EXCHANGE] = exchange;
    await lastValueFrom(next.handle(), { defaultValue: undefined });
    return recorded ?? { s: 0, h: {}, b: undefined };
  }

  /** Sends a stored answer (status, headers, body, `Idempotent-Replayed`) on a response no handler writes. */
  private sendReplay(res: HttpResponse, answer: StoredAnswer): void {
    for (const [name, value] of Object.entries(answer.h)) setResponseHeader(res, name, value);
    setResponseHeader(res, 'Idempotent-Replayed', 'true');
    this.adapterHost.httpAdapter.reply(res, answer.b, answer.s);
  }

  /** The answer's JSON, or undefined when it is not to be stored (its status, or a body JSON cannot give back). */
  private codec(meta: IdempotentMetadata): ResultCodec<StoredAnswer> {
    const store = meta.options.storeStatus ?? storableStatus;
    return {
      encode: (answer) => {
        if (answer.s === 0) {
          this.logger.warn(`@Idempotent on ${meta.where}: the manual handler recorded no answer (store()): not stored, a retry runs again`);
          return undefined;
        }
        if (!store(answer.s)) return undefined;
        if (unstorableBody(answer.b)) {
          this.logger.warn(
            `@Idempotent on ${meta.where}: a ${typeof answer.b} body (a buffer, stream or file) is not stored; a retry runs again`,
          );
          return undefined;
        }
        return JSON.stringify(answer);
      },
      decode: (text) => JSON.parse(text) as StoredAnswer,
    };
  }

  private pickHeaders(res: HttpResponse, names: readonly string[]): Record<string, string> {
    const picked: Record<string, string> = {};
    if (typeof res.getHeader !== 'function') return picked;
    for (const name of names) {
      const value = res.getHeader(name);
      if (value !== undefined) picked[name] = Array.isArray(value) ? value.join(', ') : String(value);
    }
    return picked;
  }
}
