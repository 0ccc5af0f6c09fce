import { Catch, type ArgumentsHost, type ExceptionFilter, type HttpException } from '@nestjs/common';
import { RedisLuaInputError, RedisLuaUnavailableError } from './errors';
import { RedisLuaHttpException, unavailableAnswer, withoutStack, type HeaderTarget } from './http';

/** What the filter writes to: an Express response (`status` + `json`) or a Fastify reply (`code` + `send`). */
interface ReplyTarget extends HeaderTarget {
  status?: (code: number) => unknown;
  json?: (body: unknown) => unknown;
  code?: (code: number) => unknown;
  send?: (body: unknown) => unknown;
}

/**
 * Answers the library's errors that reach Nest from your own code (a service call in a handler) the
 * way its guards and interceptors answer theirs, instead of Nest's bare 500:
 * - {@link RedisLuaInputError} (any feature's input error) → **400**, body
 *   `{ statusCode, error, message, field }`: the message says what was wrong with the input;
 * - {@link RedisLuaUnavailableError} (Redis down, timed out, out of memory, ...) → **503** with
 *   `Retry-After: 1`, body `{ statusCode, error, message, retryAfter }`; the body does not carry the
 *   Redis error (it is logged nowhere by the filter: keep `onUnavailable` or your logs for that).
 *
 * Every other error goes to the next filter (Nest's own). Opt in, globally or per controller:
 * `app.useGlobalFilters(new RedisLuaExceptionFilter())`, `{ provide: APP_FILTER, useClass: RedisLuaExceptionFilter }`
 * or `@UseFilters(RedisLuaExceptionFilter)`. Over HTTP (Express or Fastify) it writes the answer; in
 * other contexts (GraphQL, RPC, WebSocket) it returns the `HttpException` it maps to, which GraphQL
 * reports as the field's error.
 *
 * @example
 * const app = await NestFactory.create(AppModule);
 * app.useGlobalFilters(new RedisLuaExceptionFilter());
 */
@Catch(RedisLuaInputError, RedisLuaUnavailableError)
export class RedisLuaExceptionFilter implements ExceptionFilter<RedisLuaInputError | RedisLuaUnavailableError> {
  /**
   * Writes the answer to an HTTP response; elsewhere returns the mapped exception.
   * @throws never: an error that is neither class does not reach this filter.
   * @example
   * // Nest calls it; to map an error yourself, use RedisLuaExceptionFilter.toHttpException(err).
   */
  catch(exception: RedisLuaInputError | RedisLuaUnavailableError, host: ArgumentsHost): HttpException | undefined {
    const res = host.getType() === 'http' ? host.switchToHttp().getResponse<ReplyTarget>() : undefined;
    const answer = RedisLuaExceptionFilter.toHttpException(exception, res);
    if (!res) return answer;
    const status = answer.getStatus();
    const body = answer.getResponse();
    if (typeof res.json === 'function' && typeof res.status === 'function') {
      res.status(status);
      res.json(body);
    } else if (typeof res.code === 'function' && typeof res.send === 'function') {
      res.code(status);
      res.send(body);
    } else {
      return answer;
    }
    return undefined;
  }

  /**
   * The HTTP exception a library error stands for (400 or 503, see the class); sets `Retry-After` on
   * `res` for a 503 when given.
   * @throws never.
   * @example
   * try { await counters.increment(key, 1, 10); } catch (err) {
   *   if (err instanceof RedisLuaUnavailableError) throw RedisLuaExceptionFilter.toHttpException(err);
   *   throw err;
   * }
   */
  static toHttpException(error: RedisLuaInputError | RedisLuaUnavailableError, res?: HeaderTarget): HttpException {
    if (error instanceof RedisLuaUnavailableError) return unavailableAnswer('Redis is unavailable; retry later', error, res);
    return withoutStack(
      () => new RedisLuaHttpException(400, error.message, error.field === undefined ? {} : { field: error.field }, { cause: error }),
    );
  }
}
