import { BadRequestException, Logger, type ExecutionContext } from '@nestjs/common';
import { describeValue, message } from '../core/messages';
import { clientIdentity } from './client-ip';
import { RateLimitInputError } from './rate-limit.errors';
import type { RateLimitRequest } from './rate-limit.guard';
import type { ContextValue } from './rate-limit.options';

/** What the guard reads of a request: who it is (a `key` function's answer, or the client address) and context values. */

/**
 * A `key` function's result as the tracker: a non-empty string, or a finite number in decimal.
 * Anything else is the application's bug, not a bucket; text with a lone surrogate (which Redis would
 * receive as U+FFFD, the bucket of every such text) is a 400.
 * @throws RateLimitInputError naming the route, or BadRequestException for a lone surrogate.
 */
export function trackerOf(value: unknown, where: string): string {
  if (typeof value === 'string' && value.length > 0) {
    // Client input the key function passed on (a JSON body can hold "\ud800"): the client's fault.
    if (!value.isWellFormed()) throw new BadRequestException('Cannot rate-limit this request: its key is not well-formed Unicode');
    return value;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new RateLimitInputError(
    message(
      `@RateLimit on ${where}`,
      `the "key" function returned ${describeValue(value)}; it must return a non-empty string or a finite number (the request was refused and not counted)`,
    ),
    'key',
  );
}

/** The parts of a request {@link ipTracker} reads. */
type AddressedRequest = Pick<RateLimitRequest, 'ip' | 'socket'>;

/**
 * The client address of an HTTP request, normalized by {@link clientIdentity}. When `req.ip` is not
 * an IP address (a trusted proxy that wrote garbage in X-Forwarded-For) the connection's peer address
 * counts instead, so that forged values cannot open new buckets; `warning` records that this was
 * logged (once per guard).
 * @throws RateLimitInputError when neither address is an IP address.
 */
export function ipTracker(req: AddressedRequest, where: string, ipv6Subnet: number | undefined, warning: { logged: boolean }): string {
  const ip = typeof req.ip === 'string' ? clientIdentity(req.ip, ipv6Subnet) : undefined;
  if (ip !== undefined) return ip;
  const peer = req.socket?.remoteAddress;
  const fallback = typeof peer === 'string' ? clientIdentity(peer, ipv6Subnet) : undefined;
  if (fallback === undefined) {
    throw new RateLimitInputError(
      message(`@RateLimit on ${where}`, `the request has no IP address (ip ${describeValue(req.ip)}); give a "key" function`),
      'key',
    );
  }
  if (!warning.logged) {
    warning.logged = true;
    new Logger('RedisLua').warn(
      message(
        `@RateLimit on ${where}`,
        `req.ip ${describeValue(req.ip)} is not an IP address: such requests are limited by the connection's peer address ${peer} (logged once)`,
      ),
    );
  }
  return fallback;
}

export function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** A rule's value or limit: given, or a function of the request (a tier). */
export async function resolveValue<T>(value: ContextValue<T>, context: ExecutionContext): Promise<T> {
  return typeof value === 'function' ? (value as (c: ExecutionContext) => T | Promise<T>)(context) : value;
}
