import { HttpException, Injectable, Logger, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, type Subscription } from 'rxjs';
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
import type { Lock } from './lock';
import {
  LockConflictException,
  LockLostException,
  LockTimeoutError,
  SemaphoreConflictException,
  SemaphoreTimeoutError,
} from './lock.errors';
import {
  LEASE_ON_REQUEST,
  resolveLockResource,
  setRequestLease,
  WITH_LOCK_METADATA,
  WITH_SEMAPHORE_METADATA,
  type WithLockMetadata,
} from './lock-resource';
import { LockService } from './lock.service';
import type { MultiLock } from './multi-lock';
import { SemaphoreService } from './semaphore.service';
import { transportAnswer } from '../core/transports';

/** What a route decorator holds while its handler runs: a lock, the locks of several resources, a permit. */
export type RouteLease = Lock | MultiLock;

/**
 * Applied by `@WithLock`: takes the route's lock before the handler runs and releases it when the
 * handler's Observable completes, errors or is unsubscribed (a streaming response ends, or the
 * client goes away). Contention past `waitMs` becomes a 409 (or `conflictStatus`) with
 * `Retry-After`, Redis unavailable a 503 with `Retry-After`; errors of the handler pass through unchanged.
 *
 * Protected methods are the extension points (e.g. for GraphQL or microservice contexts).
 */
@Injectable()
export class LockInterceptor implements NestInterceptor {
  protected readonly logger = new Logger('RedisLua');

  constructor(
    protected readonly reflector: Reflector,
    protected readonly locks: LockService,
  ) {}

  /** The metadata key of the decorator this interceptor serves. */
  protected readonly metadataKey: string = WITH_LOCK_METADATA;
  /** How messages name the lease: `Lock`, `Semaphore`. */
  protected readonly noun: string = 'Lock';

  /** Per handler and class: the route's metadata, read once (null: the route has none). */
  private readonly routes = new RouteCache<WithLockMetadata | null>(
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- what Nest's Reflector takes
    (handler) => this.reflector.get<WithLockMetadata | undefined>(this.metadataKey, handler as Function) ?? null,
  );

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const meta = this.routes.get(context);
    if (!meta) return next.handle();
    return new Observable<unknown>((subscriber) => {
      const abort = new AbortController();
      let lock: RouteLease | undefined;
      let inner: Subscription | undefined;
      const release = async (): Promise<void> => {
        const held = lock;
        lock = undefined;
        if (!held) return;
        try {
          await held.release();
        } catch (err) {
          this.logger.warn(
            `${this.noun} on "${held.resource}" (${meta.where}): release failed, it expires by its TTL: ${(err as Error).message}`,
          );
        }
      };

      const run = async (): Promise<void> => {
        const resources = await Promise.all(meta.resources.map((one) => resolveLockResource(one, meta.label, context)));
        const stopWatching = this.onClientGone(context, () =>
          abort.abort(new HttpException('Client closed request', CLIENT_CLOSED_REQUEST)),
        );
        try {
          lock = await this.take(meta, resources, abort.signal);
        } catch (err) {
          if (err instanceof LockTimeoutError) throw this.conflict(context, meta, err);
          if (err instanceof RedisLuaUnavailableError) throw this.unavailable(context, err);
          throw err;
        } finally {
          stopWatching();
        }
        if (subscriber.closed) return release();
        const acquired = lock;
        this.keep(context, meta, acquired);
        // Release first, so that the next owner may start as soon as this response is out.
        const fail = (err: unknown): void => void release().then(() => subscriber.error(transportAnswer(context, err)));
        inner = next.handle().subscribe({
          next: (value) => (this.lostBeforeAnswer(meta, acquired) ? fail(this.lost(meta, acquired)) : subscriber.next(value)),
          error: fail,
          complete: () =>
            this.lostBeforeAnswer(meta, acquired) ? fail(this.lost(meta, acquired)) : void release().then(() => subscriber.complete()),
        });
      };
      run().catch((err: unknown) => {
        // GraphQL and WebSocket answer a 409 or 503 with their own errors.
        if (!subscriber.closed) subscriber.error(transportAnswer(context, err));
      });

      return () => {
        abort.abort(new HttpException('Client closed request', CLIENT_CLOSED_REQUEST));
        inner?.unsubscribe();
        void release();
      };
    });
  }

  /**
   * Takes the route's lease on the request's resources (the resolved templates, in the decorator's
   * order): one lock, the locks of an array (equal resources once), or a permit in a subclass.
   */
  protected take(meta: WithLockMetadata, resources: readonly string[], signal: AbortSignal): Promise<RouteLease> {
    const options = {
      ttlMs: meta.options.ttlMs ?? this.locks.defaults.ttlMs,
      waitMs: meta.options.waitMs ?? this.locks.defaults.waitMs,
      autoExtend: meta.options.autoExtend,
      mode: meta.options.mode,
      fair: meta.options.fair,
      replicas: meta.options.replicas,
      replicaTimeoutMs: meta.options.replicaTimeoutMs,
      signal,
    };
    return meta.all ? this.locks.acquireAll([...new Set(resources)], options) : this.locks.acquire(resources[0], options);
  }

  /** Leaves the lease on the request for `@CurrentLock()` / `@CurrentLocks()`. */
  protected keep(context: ExecutionContext, meta: WithLockMetadata, lease: RouteLease): void {
    setRequestLease(context.switchToHttp().getRequest(), meta.all ? LEASE_ON_REQUEST.locks : LEASE_ON_REQUEST.lock, lease);
  }

  /**
   * The error sent when the lock stays held past `waitMs`: `conflictStatus` (default 409) with a
   * JSON body, and a `Retry-After` header (seconds, at least 1) from the holder's remaining TTL.
   */
  protected conflict(context: ExecutionContext, meta: WithLockMetadata, err: LockTimeoutError): HttpException {
    const retryAfter = retryAfterSeconds(err.retryAfterMs ?? meta.options.ttlMs ?? this.locks.defaults.ttlMs);
    if (context.getType() === 'http')
      setResponseHeader(context.switchToHttp().getResponse<HeaderTarget>(), 'Retry-After', String(retryAfter));
    const status = meta.options.conflictStatus ?? 409;
    return withoutStack(() =>
      err instanceof SemaphoreTimeoutError
        ? new SemaphoreConflictException(retryAfter, status, { cause: err })
        : new LockConflictException(retryAfter, status, { cause: err }),
    );
  }

  /**
   * True when the lock was lost (its lease ran out, whatever the timers did) before the handler's
   * response went out and `onLost` is `'error'` (the default). With `'log'` it logs and says false.
   */
  protected lostBeforeAnswer(meta: WithLockMetadata, lock: RouteLease): boolean {
    // Not held and not aborted: the handler released it itself (its signal aborts only on a loss).
    if (lock.held || !lock.signal.aborted) return false;
    if (meta.options.onLost === 'log') {
      this.logger.warn(
        `${this.noun} on "${lock.resource}" (${meta.where}) was lost before the response: ${lostReason(lock)}; sent anyway (onLost: 'log')`,
      );
      return false;
    }
    return true;
  }

  /** The error sent instead of the response of a handler that lost its lock: `conflictStatus` (409). */
  protected lost(meta: WithLockMetadata, lock: RouteLease): HttpException {
    return withoutStack(() => new LockLostException(meta.options.conflictStatus ?? 409, { cause: lock.signal.reason }));
  }

  /** The error sent when Redis could not decide the lock: 503 with `Retry-After` and a JSON body. */
  protected unavailable(context: ExecutionContext, err: RedisLuaUnavailableError): HttpException {
    const res = context.getType() === 'http' ? context.switchToHttp().getResponse<HeaderTarget>() : undefined;
    return unavailableAnswer('Lock unavailable: Redis did not answer; retry later', err, res);
  }

  /** Calls `gone` if the HTTP client disconnects; returns the function that stops watching. */
  protected onClientGone(context: ExecutionContext, gone: () => void): () => void {
    return onClientGone(context, gone);
  }
}

/** Why a lock is no longer held: its signal's reason, or its lease having run out (the signal aborts on the next turn). */
function lostReason(lock: RouteLease): string {
  const reason: unknown = lock.signal.reason;
  return reason instanceof Error ? reason.message : `its lease ran out at ${new Date(lock.expiresAt).toISOString()}`;
}

/**
 * Applied by `@WithSemaphore`: takes one of the route's permits before the handler runs and gives it
 * back when the handler's Observable completes, errors or is unsubscribed; answers as
 * {@link LockInterceptor} does (409 + `Retry-After` when no permit comes within `waitMs`, 503).
 */
@Injectable()
export class SemaphoreInterceptor extends LockInterceptor {
  protected override readonly metadataKey: string = WITH_SEMAPHORE_METADATA;
  protected override readonly noun: string = 'Semaphore';

  constructor(
    reflector: Reflector,
    locks: LockService,
    protected readonly semaphores: SemaphoreService,
  ) {
    super(reflector, locks);
  }

  protected override take(meta: WithLockMetadata, resources: readonly string[], signal: AbortSignal): Promise<RouteLease> {
    return this.semaphores.acquire(resources[0], {
      permits: meta.options.permits!,
      ttlMs: meta.options.ttlMs ?? this.semaphores.defaults.ttlMs,
      waitMs: meta.options.waitMs ?? this.semaphores.defaults.waitMs,
      autoExtend: meta.options.autoExtend,
      signal,
    });
  }

  protected override keep(context: ExecutionContext, _meta: WithLockMetadata, lease: RouteLease): void {
    setRequestLease(context.switchToHttp().getRequest(), LEASE_ON_REQUEST.permit, lease);
  }
}
