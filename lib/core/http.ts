import { STATUS_CODES } from 'node:http';
import { HttpException, ServiceUnavailableException, type ExecutionContext } from '@nestjs/common';

/**
 * The library's HTTP answers, in one place: response headers, `Retry-After`, and the exceptions the
 * guards and interceptors throw (429, 409, 503). Each exception carries a JSON body
 * `{ statusCode, error, message, ... }` that Nest's exception filter sends as it is.
 */

/** What the library writes headers with: an Express response (`setHeader`, `header`) or a Fastify reply (`header`). */
export interface HeaderTarget {
  header?: (name: string, value: string) => unknown;
  setHeader?: (name: string, value: string) => unknown;
}

/** Node's `setHeader` where there is one (Express's `header()` only adds coercions), else Fastify's `header()`. */
export function setResponseHeader(res: HeaderTarget, name: string, value: string): void {
  if (typeof res.setHeader === 'function') res.setHeader(name, value);
  else res.header?.(name, value);
}

/**
 * The request and response of an HTTP context; both undefined elsewhere (RPC, WebSocket, GraphQL).
 * Read as the context's arguments 0 and 1: what `switchToHttp()` returns, without the three closures
 * it creates on every call (the guard runs this on every request).
 */
export function httpArgs<Req, Res>(context: ExecutionContext): { req?: Req; res?: Res } {
  if (context.getType() !== 'http') return {};
  return { req: context.getArgByIndex<Req>(0), res: context.getArgByIndex<Res>(1) };
}

/** `Retry-After` in whole seconds, at least 1 (a client may not retry sooner than it can pass). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * Builds an exception without capturing a stack trace: these are answers to clients, not faults
 * (Nest's exception filter does not log them), and capturing the stack was the costliest step of a
 * denied request in the bench profile ("@RateLimit route while one key floods"). Error.stackTraceLimit
 * is restored before anything else can run: the construction is synchronous.
 */
export function withoutStack<E extends Error>(build: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return build();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** An HTTP exception whose body is `{ statusCode, error, message, ...details }`. */
export class RedisLuaHttpException extends HttpException {
  constructor(status: number, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, ...details }, status, options);
  }
}

/** `Retry-After` of a 503: Redis outages the library reports are usually short (a restart, a failover). */
export const UNAVAILABLE_RETRY_AFTER_S = 1;

/**
 * 503: Redis could not decide (down, slower than the deadline, out of memory): a fail-closed rate
 * limit, a `@WithLock` route, or any library error mapped by `RedisLuaExceptionFilter`. Body
 * `{ statusCode, error, message, retryAfter }`. A Nest `ServiceUnavailableException`, so filters
 * catching that class keep working.
 */
export class RedisLuaUnavailableException extends ServiceUnavailableException {
  constructor(message: string, options?: { cause?: unknown }) {
    super({ statusCode: 503, error: STATUS_CODES[503], message, retryAfter: UNAVAILABLE_RETRY_AFTER_S }, options);
  }
}

/**
 * The 503 a guard or interceptor throws when Redis is unavailable, after setting `Retry-After` on an
 * HTTP response (`res` undefined elsewhere).
 */
export function unavailableAnswer(message: string, cause: unknown, res: HeaderTarget | undefined): RedisLuaUnavailableException {
  if (res) setResponseHeader(res, 'Retry-After', String(UNAVAILABLE_RETRY_AFTER_S));
  return withoutStack(() => new RedisLuaUnavailableException(message, { cause }));
}

/** Status nginx logs for a client that closed the connection before the response. */
export const CLIENT_CLOSED_REQUEST = 499;

/** What {@link onClientGone} needs of a response: Node's (Express) or, under `raw`, Fastify's. */
interface RawResponse {
  writableFinished?: boolean;
  once?: (event: 'close', listener: () => void) => unknown;
  removeListener?: (event: 'close', listener: () => void) => unknown;
}

/**
 * Calls `gone` if the HTTP client disconnects before its response is out (a request that waits for a
 * lock or a run stops waiting); returns the function that stops watching. A no-op outside HTTP.
 */
export function onClientGone(context: ExecutionContext, gone: () => void): () => void {
  if (context.getType() !== 'http') return () => undefined;
  const response = context.switchToHttp().getResponse<{ raw?: RawResponse } & RawResponse>();
  const raw: RawResponse = response.raw ?? response;
  if (typeof raw.once !== 'function') return () => undefined;
  const listener = (): void => {
    if (!raw.writableFinished) gone();
  };
  raw.once('close', listener);
  return () => raw.removeListener?.('close', listener);
}
