import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { describeValue, message } from '../core/messages';
import { routeDecorator } from '../core/route-metadata';
import { inputSite } from '../core/validation';
import type { Lock } from './lock';
import {
  compileLockResource,
  getRequestLease,
  LEASE_ON_REQUEST,
  WITH_LOCK_METADATA,
  WITH_SEMAPHORE_METADATA,
  type WithLockMetadata,
} from './lock-resource';
import { LockInputError } from './lock.errors';
import { LockInterceptor, SemaphoreInterceptor } from './lock.interceptor';
import { MAX_LOCK_RESOURCES, validateWithLockOptions, type LockResource, type WithLockOptions } from './lock.options';
import type { MultiLock } from './multi-lock';
import { validateWithSemaphoreOptions, type WithSemaphoreOptions } from './semaphore.options';

/**
 * Runs the handler holding the distributed lock on `resource`, or on every one of an array of
 * resources (taken together with `LockService.acquireAll`: deadlock-free, across cluster slots):
 *
 * ```ts
 * @Post(':id/pay')
 * @WithLock('order:{params.id}', { waitMs: 2000 })
 * pay(@Param('id') id: string, @CurrentLock() lock: Lock) { ... }
 *
 * @Post('transfers')
 * @WithLock(['account:{body.from}', 'account:{body.to}'])
 * transfer(@Body() body: TransferDto, @CurrentLocks() locks: MultiLock) { ... }
 * ```
 *
 * - `resource`: a template with `{params.x}`, `{query.x}`, `{body.x}`, `{headers.x}`, `{user.x}`
 *   placeholders (a missing value answers 400), or a function of the ExecutionContext. Resources of
 *   an array that come out equal for a request are locked once.
 * - `mode: 'read'`: a shared read lock (see `LockService.acquire`).
 * - Still held after `waitMs` → 409 (or `conflictStatus`) with `Retry-After` and a JSON body.
 * - Released when the handler's Observable completes, errors or is unsubscribed (client gone).
 *
 * Options are validated here, at decoration time: a wrong one fails when the class is loaded, with
 * a message naming the handler.
 */
export function WithLock(resource: LockResource | readonly LockResource[], options: WithLockOptions = {}): MethodDecorator {
  return (target, key, descriptor) => {
    const where = handlerName(target, key);
    const label = `@WithLock on ${where}`;
    validateWithLockOptions(options, inputSite(label, LockInputError));
    const all = Array.isArray(resource);
    const resources = all ? (resource as readonly LockResource[]) : [resource as LockResource];
    if (all && (resources.length === 0 || resources.length > MAX_LOCK_RESOURCES)) {
      throw new LockInputError(
        message(label, `the array of lock resources must hold 1 to ${MAX_LOCK_RESOURCES} resources, got ${describeValue(resource)}`),
        'resource',
      );
    }
    const meta: WithLockMetadata = {
      resources: resources.map((one) => compileLockResource(one, label)),
      all,
      options: { ...options },
      where,
      label,
    };
    routeDecorator(WITH_LOCK_METADATA, meta, { interceptor: LockInterceptor })(target, key, descriptor);
  };
}

/**
 * Runs the handler holding one of the `permits` of the semaphore `name` (at most `permits` requests
 * in the handler at once, across every instance):
 *
 * ```ts
 * @Post('renders')
 * @WithSemaphore('gpu-jobs', { permits: 4, waitMs: 10_000 })
 * render(@Body() scene: SceneDto, @CurrentPermit() permit: Lock) { ... }
 * ```
 *
 * - `name`: a fixed name, a template with placeholders (`'exports:{user.tenant}'`: one semaphore per
 *   tenant), or a function of the ExecutionContext, as `@WithLock`'s resource.
 * - No permit within `waitMs` → 409 (or `conflictStatus`) with `Retry-After` (until the first
 *   holder's permit expires) and a JSON body; Redis unavailable → 503.
 * - Given back when the handler's Observable completes, errors or is unsubscribed.
 *
 * Options are validated at decoration time (`permits` is required).
 */
export function WithSemaphore(name: LockResource, options: WithSemaphoreOptions): MethodDecorator {
  return (target, key, descriptor) => {
    const where = handlerName(target, key);
    const label = `@WithSemaphore on ${where}`;
    validateWithSemaphoreOptions(options, inputSite(label, LockInputError));
    const meta: WithLockMetadata = { resources: [compileLockResource(name, label)], all: false, options: { ...options }, where, label };
    routeDecorator(WITH_SEMAPHORE_METADATA, meta, { interceptor: SemaphoreInterceptor })(target, key, descriptor);
  };
}

function handlerName(target: object, key: string | symbol): string {
  return `${(target as { constructor: { name: string } }).constructor.name}.${String(key)}`;
}

/**
 * The {@link Lock} `@WithLock(resource)` took for this request (its `fence`, `signal`, `expiresAt`),
 * or `undefined` on a handler without it.
 */
export const CurrentLock: () => ParameterDecorator = createParamDecorator((_data: unknown, context: ExecutionContext): Lock | undefined =>
  getRequestLease<Lock>(context.switchToHttp().getRequest(), LEASE_ON_REQUEST.lock),
);

/** The {@link MultiLock} `@WithLock([...])` took for this request, or `undefined` on a handler without it. */
export const CurrentLocks: () => ParameterDecorator = createParamDecorator(
  (_data: unknown, context: ExecutionContext): MultiLock | undefined =>
    getRequestLease<MultiLock>(context.switchToHttp().getRequest(), LEASE_ON_REQUEST.locks),
);

/** The permit (a {@link Lock}) `@WithSemaphore` took for this request, or `undefined` on a handler without it. */
export const CurrentPermit: () => ParameterDecorator = createParamDecorator((_data: unknown, context: ExecutionContext): Lock | undefined =>
  getRequestLease<Lock>(context.switchToHttp().getRequest(), LEASE_ON_REQUEST.permit),
);
