import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { routeDecorator } from '../core/route-metadata';
import type { Lock } from './lock';
import { compileLockResource, getRequestLock, WITH_LOCK_METADATA, type WithLockMetadata } from './lock-resource';
import { LockInterceptor } from './lock.interceptor';
import { inputSite } from '../core/validation';
import { LockInputError } from './lock.errors';
import { validateWithLockOptions, type LockResource, type WithLockOptions } from './lock.options';

/**
 * Runs the handler holding the distributed lock on `resource`:
 *
 * ```ts
 * @Post(':id/pay')
 * @WithLock('order:{params.id}', { waitMs: 2000 })
 * pay(@Param('id') id: string, @CurrentLock() lock: Lock) { ... }
 * ```
 *
 * - `resource`: a template with `{params.x}`, `{query.x}`, `{body.x}`, `{headers.x}`, `{user.x}`
 *   placeholders (a missing value answers 400), or a function of the ExecutionContext.
 * - Still held after `waitMs` → 409 (or `conflictStatus`) with `Retry-After` and a JSON body.
 * - Released when the handler's Observable completes, errors or is unsubscribed (client gone).
 *
 * Options are validated here, at decoration time: a wrong one fails when the class is loaded, with
 * a message naming the handler.
 */
export function WithLock(resource: LockResource, options: WithLockOptions = {}): MethodDecorator {
  return (target, key, descriptor) => {
    const where = `@WithLock on ${(target as { constructor: { name: string } }).constructor.name}.${String(key)}`;
    validateWithLockOptions(options, inputSite(where, LockInputError));
    const meta: WithLockMetadata = {
      ...compileLockResource(resource, where),
      options: { ...options },
      where: where.slice('@WithLock on '.length),
    };
    routeDecorator(WITH_LOCK_METADATA, meta, { interceptor: LockInterceptor })(target, key, descriptor);
  };
}

/**
 * The {@link Lock} `@WithLock` took for this request (its `fence`, `signal`, `expiresAt`), or
 * `undefined` on a handler without `@WithLock`.
 */
export const CurrentLock: () => ParameterDecorator = createParamDecorator((_data: unknown, context: ExecutionContext): Lock | undefined =>
  getRequestLock(context.switchToHttp().getRequest()),
);
