import { HttpException, Injectable, Logger, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, type Subscription } from 'rxjs';
import { RedisLuaUnavailableError } from '../core/errors';
import { retryAfterSeconds, setResponseHeader, unavailableAnswer, withoutStack, type HeaderTarget } from '../core/http';
import { RouteCache } from '../core/route-metadata';
import type { Lock } from './lock';
import { LockConflictException, LockLostException, LockTimeoutError } from './lock.errors';
import { resolveLockResource, setRequestLock, WITH_LOCK_METADATA, type WithLockMetadata } from './lock-resource';
import { LockService } from './lock.service';
import { transportAnswer } from '../core/transports';

/** Status nginx logs for a client that closed the connection before the response. */
const CLIENT_CLOSED_REQUEST = 499;

interface RawResponse {
  writableFinished?: boolean;
  once?: (event: 'close', listener: () => void) => unknown;
  removeListener?: (event: 'close', listener: () => void) => unknown;
}

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

  /** Per handler and class: the route's `@WithLock` metadata, read once (null: the route has none). */
  private readonly routes = new RouteCache<WithLockMetadata | null>(
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- what Nest's Reflector takes
    (handler) => this.reflector.get<WithLockMetadata | undefined>(WITH_LOCK_METADATA, handler as Function) ?? null,
  );

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const meta = this.routes.get(context);
    if (!meta) return next.handle();
    return new Observable<unknown>((subscriber) => {
      const abort = new AbortController();
      let lock: Lock | undefined;
      let inner: Subscription | undefined;
      const release = async (): Promise<void> => {
        const held = lock;
        lock = undefined;
        if (!held) return;
        try {
          await held.release();
        } catch (err) {
          this.logger.warn(`Lock on "${held.resource}" (${meta.where}): release failed, it expires by its TTL: ${(err as Error).message}`);
        }
      };

      const run = async (): Promise<void> => {
        const resource = await resolveLockResource(meta, context);
        const stopWatching = this.onClientGone(context, () =>
          abort.abort(new HttpException('Client closed request', CLIENT_CLOSED_REQUEST)),
        );
        try {
          lock = await this.locks.acquire(resource, {
            ttlMs: meta.options.ttlMs ?? this.locks.defaults.ttlMs,
            waitMs: meta.options.waitMs ?? this.locks.defaults.waitMs,
            autoExtend: meta.options.autoExtend,
            signal: abort.signal,
          });
        } catch (err) {
          if (err instanceof LockTimeoutError) throw this.conflict(context, meta, err);
          if (err instanceof RedisLuaUnavailableError) throw this.unavailable(context, err);
          throw err;
        } finally {
          stopWatching();
        }
        if (subscriber.closed) return release();
        const acquired = lock;
        setRequestLock(context.switchToHttp().getRequest(), acquired);
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
   * The error sent when the lock stays held past `waitMs`: `conflictStatus` (default 409) with a
   * JSON body, and a `Retry-After` header (seconds, at least 1) from the holder's remaining TTL.
   */
  protected conflict(context: ExecutionContext, meta: WithLockMetadata, err: LockTimeoutError): HttpException {
    const retryAfter = retryAfterSeconds(err.retryAfterMs ?? meta.options.ttlMs ?? this.locks.defaults.ttlMs);
    if (context.getType() === 'http')
      setResponseHeader(context.switchToHttp().getResponse<HeaderTarget>(), 'Retry-After', String(retryAfter));
    return withoutStack(() => new LockConflictException(retryAfter, meta.options.conflictStatus ?? 409, { cause: err }));
  }

  /**
   * True when the lock was lost (its lease ran out, whatever the timers did) before the handler's
   * response went out and `onLost` is `'error'` (the default). With `'log'` it logs and says false.
   */
  protected lostBeforeAnswer(meta: WithLockMetadata, lock: Lock): boolean {
    // Not held and not aborted: the handler released it itself (its signal aborts only on a loss).
    if (lock.held || !lock.signal.aborted) return false;
    if (meta.options.onLost === 'log') {
      this.logger.warn(
        `Lock on "${lock.resource}" (${meta.where}) was lost before the response: ${lostReason(lock)}; sent anyway (onLost: 'log')`,
      );
      return false;
    }
    return true;
  }

  /** The error sent instead of the response of a handler that lost its lock: `conflictStatus` (409). */
  protected lost(meta: WithLockMetadata, lock: Lock): HttpException {
    return withoutStack(() => new LockLostException(meta.options.conflictStatus ?? 409, { cause: lock.signal.reason }));
  }

  /** The error sent when Redis could not decide the lock: 503 with `Retry-After` and a JSON body. */
  protected unavailable(context: ExecutionContext, err: RedisLuaUnavailableError): HttpException {
    const res = context.getType() === 'http' ? context.switchToHttp().getResponse<HeaderTarget>() : undefined;
    return unavailableAnswer('Lock unavailable: Redis did not answer; retry later', err, res);
  }

  /** Calls `gone` if the HTTP client disconnects; returns the function that stops watching. */
  protected onClientGone(context: ExecutionContext, gone: () => void): () => void {
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
}

/** Why a lock is no longer held: its signal's reason, or its lease having run out (the signal aborts on the next turn). */
function lostReason(lock: Lock): string {
  const reason: unknown = lock.signal.reason;
  return reason instanceof Error ? reason.message : `its lease ran out at ${new Date(lock.expiresAt).toISOString()}`;
}
