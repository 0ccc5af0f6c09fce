import { BadRequestException, type ExecutionContext } from '@nestjs/common';
import { describeValue, message } from '../core/messages';
import { encodeKeyPart } from '../scripts/key-builder';
import { LockInputError } from './lock.errors';
import type { LockResource, WithLockOptions } from './lock.options';

/** Metadata key of `@WithLock`. @internal */
export const WITH_LOCK_METADATA = 'nest-redis-lua:with-lock';

/** Metadata key of `@WithSemaphore`. @internal */
export const WITH_SEMAPHORE_METADATA = 'nest-redis-lua:with-semaphore';

/** Where `@WithLock` and `@WithSemaphore` leave the request's leases for `@CurrentLock()`, `@CurrentLocks()`, `@CurrentPermit()`. @internal */
export const LEASE_ON_REQUEST = {
  lock: Symbol('nest-redis-lua:lock'),
  locks: Symbol('nest-redis-lua:locks'),
  permit: Symbol('nest-redis-lua:permit'),
} as const;

const SOURCES = ['params', 'query', 'body', 'headers', 'user'] as const;
type Source = (typeof SOURCES)[number];

interface Placeholder {
  readonly text: string;
  readonly source: Source;
  readonly path: readonly string[];
}

/** One resource of `@WithLock` or `@WithSemaphore`, compiled at decoration time. */
export interface CompiledLockResource {
  readonly resource: ((context: ExecutionContext) => string | number | Promise<string | number>) | ReadonlyArray<string | Placeholder>;
  /** The characters of the template's text between placeholders, which placeholder values have escaped. */
  readonly separators?: ReadonlySet<number>;
}

/**
 * `@WithLock` / `@WithSemaphore` metadata: the compiled resources and the options (what
 * {@link LockInterceptor}'s protected methods receive).
 */
export interface WithLockMetadata {
  /** The resource, or the resources `@WithLock([...])` locks together. */
  readonly resources: readonly CompiledLockResource[];
  /** Given as an array: the locks are taken with `LockService.acquireAll`. */
  readonly all: boolean;
  /** The decorator's options (`permits`: `@WithSemaphore`'s). */
  readonly options: WithLockOptions & { readonly permits?: number };
  /** `Controller.handler`, for messages. */
  readonly where: string;
  /** `@WithLock on Controller.handler`, for messages. */
  readonly label: string;
}

const PLACEHOLDER = /^(params|query|body|headers|user)((?:\.[^.{}\s]+)+)$/;

/**
 * Compiles a resource template at decoration time. Throws on an unknown placeholder, an empty one,
 * an unmatched brace, two placeholders with no text between them, or a `%` between placeholders
 * (the escape character of their values), naming the handler.
 */
export function compileLockResource(resource: LockResource, where: string): CompiledLockResource {
  if (typeof resource === 'function') return { resource };
  if (typeof resource !== 'string' || resource.length === 0) {
    throw new LockInputError(
      message(where, `the lock resource must be a non-empty string or a function of the ExecutionContext, got ${describeValue(resource)}`),
      'resource',
    );
  }
  const invalid = (text: string): never => {
    throw new LockInputError(message(where, `${text} in lock resource "${resource}"`), 'resource');
  };
  const parts: Array<string | Placeholder> = [];
  const pattern = /\{([^{}]*)\}/g;
  let last = 0;
  for (let match = pattern.exec(resource); match; match = pattern.exec(resource)) {
    parts.push(resource.slice(last, match.index));
    const inner = PLACEHOLDER.exec(match[1]);
    if (!inner) invalid(`unknown placeholder "${match[0]}" (use {${SOURCES.join('.x}, {')}.x})`);
    const source = inner![1] as Source;
    const path = inner![2].slice(1).split('.');
    parts.push({ text: match[0], source, path: source === 'headers' ? path.map((p) => p.toLowerCase()) : path });
    last = match.index + match[0].length;
  }
  parts.push(resource.slice(last));
  if (parts.some((p) => typeof p === 'string' && /[{}]/.test(p))) invalid('unmatched brace');
  // Literal text between two placeholders: values have its characters escaped, so that where one
  // value ends and the text begins is never ambiguous (`{a}-{b}`: "a-b" + "c" is not "a" + "b-c").
  const separators = new Set<number>();
  for (let i = 2; i < parts.length - 1; i += 2) {
    const between = parts[i] as string;
    if (between === '')
      invalid(`placeholders ${(parts[i - 1] as Placeholder).text} and ${(parts[i + 1] as Placeholder).text} need text between them`);
    if (between.includes('%')) invalid('"%" between placeholders (it escapes their values)');
    for (let j = 0; j < between.length; j++) separators.add(between.charCodeAt(j));
  }
  return { resource: parts.filter((p) => p !== ''), separators: separators.size === 0 ? undefined : separators };
}

/**
 * The resource for one request (`where`: the decorator and handler, for messages). Placeholder values are encoded like key parts (`%`, `:`, braces and
 * `#` escaped, see {@link encodeKeyPart}) and have the template's separators escaped too, so that
 * distinct values always give distinct resources. A missing or non-scalar value, or text with a lone
 * surrogate, is the client's fault: a 400. A resource function that returns anything but a non-empty
 * string or a finite number is the application's: a {@link LockInputError} naming the route.
 */
export async function resolveLockResource(meta: CompiledLockResource, where: string, context: ExecutionContext): Promise<string> {
  if (typeof meta.resource === 'function') {
    const value = await meta.resource(context);
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string' && value.length > 0) return value;
    throw new LockInputError(
      message(
        where,
        `the resource function returned ${describeValue(value)}; it must return a non-empty string or a finite number (the handler did not run)`,
      ),
      'resource',
    );
  }
  const request = context.switchToHttp().getRequest<Record<string, unknown>>();
  let resource = '';
  for (const part of meta.resource) resource += typeof part === 'string' ? part : placeholderValue(part, request, meta.separators);
  return resource;
}

function placeholderValue(
  part: Placeholder,
  request: Record<string, unknown> | undefined,
  separators: ReadonlySet<number> | undefined,
): string {
  let value: unknown = request?.[part.source];
  for (const key of part.path) {
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  }
  if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
  if (typeof value !== 'string' || value.length === 0) {
    throw new BadRequestException(`Cannot lock this request: ${part.text} is missing`);
  }
  if (!value.isWellFormed()) throw new BadRequestException(`Cannot lock this request: ${part.text} is not well-formed Unicode`);
  const encoded = encodeKeyPart(value);
  return separators === undefined ? encoded : escapeSeparators(encoded, separators);
}

/**
 * `%XX` (or `%uXXXX` above U+00FF) for each separator character. Injective on what
 * {@link encodeKeyPart} returns: its own escapes are only those of `% : { } #`, which it leaves
 * nowhere raw, and `%` is never a separator.
 */
function escapeSeparators(text: string, separators: ReadonlySet<number>): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (!separators.has(unit)) continue;
    const hex = unit.toString(16).toUpperCase();
    out += text.slice(from, i) + (unit <= 0xff ? `%${hex.padStart(2, '0')}` : `%u${hex.padStart(4, '0')}`);
    from = i + 1;
  }
  return from === 0 ? text : out + text.slice(from);
}

/** The lease a route decorator took for this request, if any. @internal */
export function getRequestLease<T>(request: unknown, slot: symbol): T | undefined {
  return (request as Record<symbol, T | undefined> | undefined)?.[slot];
}

/** @internal */
export function setRequestLease(request: unknown, slot: symbol, lease: unknown): void {
  if (request !== null && typeof request === 'object') (request as Record<symbol, unknown>)[slot] = lease;
}
