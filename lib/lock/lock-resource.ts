import { BadRequestException, type ExecutionContext } from '@nestjs/common';
import { encodeKeyPart } from '../scripts/key-builder';
import type { Lock } from './lock';
import type { LockResource, WithLockOptions } from './lock.options';

/** Metadata key of `@WithLock`. @internal */
export const WITH_LOCK_METADATA = 'nest-redis-lua:with-lock';

/** Where `@WithLock` leaves the request's Lock for `@CurrentLock()`. @internal */
export const LOCK_ON_REQUEST = Symbol('nest-redis-lua:lock');

const SOURCES = ['params', 'query', 'body', 'headers', 'user'] as const;
type Source = (typeof SOURCES)[number];

interface Placeholder {
  readonly text: string;
  readonly source: Source;
  readonly path: readonly string[];
}

/** `@WithLock` metadata: the compiled resource and the options (what {@link LockInterceptor}'s protected methods receive). */
export interface WithLockMetadata {
  readonly resource: ((context: ExecutionContext) => string | Promise<string>) | ReadonlyArray<string | Placeholder>;
  readonly options: WithLockOptions;
  /** `Controller.handler`, for messages. */
  readonly where: string;
}

const PLACEHOLDER = /^(params|query|body|headers|user)((?:\.[^.{}\s]+)+)$/;

/**
 * Compiles a resource template at decoration time. Throws on an unknown placeholder, an empty one,
 * or an unmatched brace, naming the handler.
 */
export function compileLockResource(resource: LockResource, where: string): WithLockMetadata['resource'] {
  if (typeof resource === 'function') return resource;
  if (typeof resource !== 'string' || resource.length === 0) {
    throw new TypeError(`nest-redis-lua: ${where}: the lock resource must be a non-empty string or a function of the ExecutionContext`);
  }
  const parts: Array<string | Placeholder> = [];
  const pattern = /\{([^{}]*)\}/g;
  let last = 0;
  for (let match = pattern.exec(resource); match; match = pattern.exec(resource)) {
    parts.push(resource.slice(last, match.index));
    const inner = PLACEHOLDER.exec(match[1]);
    if (!inner) {
      throw new TypeError(
        `nest-redis-lua: ${where}: unknown placeholder "${match[0]}" in lock resource "${resource}" (use {${SOURCES.join('.x}, {')}.x})`,
      );
    }
    const source = inner[1] as Source;
    const path = inner[2].slice(1).split('.');
    parts.push({ text: match[0], source, path: source === 'headers' ? path.map((p) => p.toLowerCase()) : path });
    last = match.index + match[0].length;
  }
  const rest = resource.slice(last);
  if (parts.some((p) => typeof p === 'string' && /[{}]/.test(p)) || /[{}]/.test(rest)) {
    throw new TypeError(`nest-redis-lua: ${where}: unmatched brace in lock resource "${resource}"`);
  }
  parts.push(rest);
  return parts.filter((p) => p !== '');
}

/**
 * The resource for one request. Placeholder values are encoded like key parts (`:`, `%`, braces
 * escaped) so that one value cannot pose as two. A missing or non-scalar value is a 400.
 */
export async function resolveLockResource(meta: WithLockMetadata, context: ExecutionContext): Promise<string> {
  if (typeof meta.resource === 'function') {
    const value = await meta.resource(context);
    if (typeof value !== 'string' || value.length === 0) {
      throw new BadRequestException(`Cannot lock this request: its lock resource is empty`);
    }
    return value;
  }
  const request = context.switchToHttp().getRequest<Record<string, unknown>>();
  return meta.resource
    .map((part) => {
      if (typeof part === 'string') return part;
      let value: unknown = request?.[part.source];
      for (const key of part.path) {
        value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
      }
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      if (typeof value !== 'string' || value.length === 0) {
        throw new BadRequestException(`Cannot lock this request: ${part.text} is missing`);
      }
      return encodeKeyPart(value);
    })
    .join('');
}

/** The Lock `@WithLock` took for this request, if any. @internal */
export function getRequestLock(request: unknown): Lock | undefined {
  return (request as { [LOCK_ON_REQUEST]?: Lock } | undefined)?.[LOCK_ON_REQUEST];
}

/** @internal */
export function setRequestLock(request: unknown, lock: Lock): void {
  if (request !== null && typeof request === 'object') (request as { [LOCK_ON_REQUEST]?: Lock })[LOCK_ON_REQUEST] = lock;
}
