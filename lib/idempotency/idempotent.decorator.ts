import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { routeDecorator } from '../core/route-metadata';
import { inputSite } from '../core/validation';
import { IdempotencyInputError } from './idempotency.errors';
import { IDEMPOTENT_EXCHANGE, IDEMPOTENT_METADATA, IdempotencyInterceptor, type IdempotentMetadata } from './idempotency.interceptor';
import { validateIdempotentOptions, type IdempotentExchange, type IdempotentOptions } from './idempotency.options';

/**
 * Makes a route safe to retry: the first request with an `Idempotency-Key` header runs the handler,
 * and its answer (status, selected headers, body) is stored and replayed to every retry with the same
 * key and payload, with `Idempotent-Replayed: true` — across every instance. A retry while the first
 * still runs is answered 409 with `Retry-After` (or waits, `waitMs`); the same key with another
 * payload 422; a request without the key 400 (unless `required: false`). 5xx answers and thrown
 * errors other than `HttpException`s are not stored: a retry runs the handler again. Options are
 * checked when the class is declared; a handler that writes its own response (`@Res()` without
 * `passthrough`) fails at boot unless it records its answer (option `manual`, `@CurrentIdempotency()`);
 * an `@Sse()` stream or a handler that is not an HTTP route fails at boot.
 * @throws IdempotencyInputError on invalid options, naming the handler.
 * @example
 * ```ts
 * @Post('payments')
 * @Idempotent({ scope: (ctx) => ctx.switchToHttp().getRequest<{ user: { id: string } }>().user.id })
 * pay(@Body() body: PaymentDto) { return this.payments.charge(body); }
 * ```
 */
export function Idempotent(options: IdempotentOptions = {}): MethodDecorator {
  return (target, key, descriptor) => {
    const where = `${(target as { constructor: { name: string } }).constructor.name}.${String(key)}`;
    validateIdempotentOptions(options, inputSite(`@Idempotent on ${where}`, IdempotencyInputError));
    const meta: IdempotentMetadata = { options: { ...options }, header: (options.header ?? 'Idempotency-Key').toLowerCase(), where };
    routeDecorator(IDEMPOTENT_METADATA, meta, { interceptor: IdempotencyInterceptor })(target, key, descriptor);
  };
}

/**
 * The {@link IdempotentExchange} of a `@Idempotent({ manual: true })` handler (one that writes its own
 * response with `@Res()`): record the answer it sends with `store(...)`, so that retries get it.
 * `undefined` on other handlers.
 * @example
 * ```ts
 * @Post('exports')
 * @Idempotent({ manual: true })
 * export(@Res() res: Response, @CurrentIdempotency() idem: IdempotentExchange) {
 *   const body = { file: 'exports/42.csv' };
 *   res.status(202).json(body);
 *   idem.store({ status: 202, body, headers: { 'content-type': 'application/json; charset=utf-8' } });
 * }
 * ```
 */
export const CurrentIdempotency: () => ParameterDecorator = createParamDecorator(
  (_data: unknown, context: ExecutionContext): IdempotentExchange | undefined =>
    (context.switchToHttp().getRequest<Record<symbol, IdempotentExchange | undefined>>() ?? {})[IDEMPOTENT_EXCHANGE],
);
