import type { ExecutionContext } from '@nestjs/common';
import {
  checkBoolean,
  checkChoice,
  checkDuration,
  checkFunction,
  checkInteger,
  checkKnownKeys,
  checkObject,
  checkSignal,
  checkText,
  fail,
  keysOf,
  type InputSite,
} from '../core/validation';
import { mustBe } from '../core/messages';

/** Options of {@link IdempotencyService.run}. */
export interface IdempotencyRunOptions {
  /**
   * Whose key it is (a user, a tenant, an API key): the same key in two scopes is two keys. Default:
   * none (one namespace for the whole application).
   */
  scope?: string;
  /** How long a completed run's result answers retries, in ms (default 86400000: 24 h). */
  ttlMs?: number;
  /**
   * The running claim's lease in ms (default 10000): renewed every `leaseMs / 3` while `fn` runs, so a
   * process that dies mid-run blocks retries for at most this long; then a retry runs again.
   */
  leaseMs?: number;
  /**
   * How long a call that finds the same run in progress waits for it to end, in ms (default 0: it
   * rejects at once with `IdempotencyConflictError`). A run that completes within it is replayed; one
   * that fails (its claim dropped) lets the waiter run `fn` itself.
   */
  waitMs?: number;
  /** Results larger than this (JSON, UTF-8 bytes) are not stored (logged): retries run again. Default 1048576. */
  maxResultBytes?: number;
  /** Stops waiting (rejects with its reason); does not stop a run already started. */
  signal?: AbortSignal;
}

/** What {@link IdempotencyService.run} resolves with. */
export interface IdempotentResult<T> {
  /** `fn`'s result: this call's, or the stored one of the earlier run (as JSON gives it back). */
  readonly value: T;
  /** True when the value is the stored result of an earlier run (`fn` did not run for this call). */
  readonly replayed: boolean;
}

/** Defaults. */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000;
export const DEFAULT_IDEMPOTENCY_LEASE_MS = 10_000;
export const DEFAULT_MAX_RESULT_BYTES = 1_048_576;
/** The largest result a run may store (Redis strings hold up to 512 MiB). */
const MAX_STORED_BYTES = 512 * 1_048_576;
/** The longest result TTL: a year. */
const MAX_TTL_MS = 31_536_000_000;
/** An idempotency key or scope: what the IETF draft allows is short; 256 characters leave room. */
export const IDEMPOTENCY_KEY = { maxLength: 256 };
/** A fingerprint: a hash, or a short description of the request. */
export const FINGERPRINT = { maxLength: 1024 };

const RUN_OPTION_KEYS = keysOf<IdempotencyRunOptions>({
  scope: true,
  ttlMs: true,
  leaseMs: true,
  waitMs: true,
  maxResultBytes: true,
  signal: true,
});

/** Checks the options of a run, naming `site.where`. */
export function validateRunOptions(options: IdempotencyRunOptions, site: InputSite): void {
  checkObject(options, 'options', site, 'an object of idempotency options');
  checkKnownKeys(options, RUN_OPTION_KEYS, site);
  if (options.scope !== undefined) checkText(options.scope, 'scope', site, IDEMPOTENCY_KEY, 'option');
  if (options.ttlMs !== undefined) checkDuration(options.ttlMs, 'ttlMs', site, false, MAX_TTL_MS);
  if (options.leaseMs !== undefined) checkDuration(options.leaseMs, 'leaseMs', site);
  if (options.waitMs !== undefined) checkDuration(options.waitMs, 'waitMs', site, true);
  if (options.maxResultBytes !== undefined) checkInteger(options.maxResultBytes, 'maxResultBytes', site, 1, MAX_STORED_BYTES);
  if (options.signal !== undefined) checkSignal(options.signal, 'signal', site);
}

/** Options of the `@Idempotent()` decorator. */
export interface IdempotentOptions {
  /** The request header holding the key (default `Idempotency-Key`, as the IETF draft names it). */
  header?: string;
  /** A request without the header is refused with 400 (default `true`); with `false` it runs normally. */
  required?: boolean;
  /**
   * Whose key it is, from the request (typically the user or API key: `(ctx) => ctx.switchToHttp()
   * .getRequest().user.id`); the same key in two scopes is two keys. Default: none.
   */
  scope?: (context: ExecutionContext) => string | undefined | Promise<string | undefined>;
  /**
   * What must match for a replay (default: method, URL and a SHA-256 of the JSON body). The same key
   * with another fingerprint is answered 422.
   */
  fingerprint?: (request: unknown) => string;
  /** Which statuses are stored and replayed (default: 2xx, and 4xx other than 409 and 429). */
  storeStatus?: (status: number) => boolean;
  /** Response headers stored with the answer and replayed (default `['content-type', 'location']`). */
  headers?: readonly string[];
  /** How long a stored answer is replayed, in ms (default 86400000: 24 h). */
  ttlMs?: number;
  /** The running request's lease, in ms (default 10000; renewed while the handler runs). */
  leaseMs?: number;
  /** How long a retry that finds the first request still running waits for its answer (default 0: 409 at once). */
  waitMs?: number;
  /** Answers whose JSON is larger are not stored (logged; a retry runs again). Default 1048576. */
  maxBodyBytes?: number;
  /**
   * When Redis cannot claim the key (down, no reply within `commandTimeout`, out of memory):
   * `'closed'` (default) answers 503 and does not run the handler — never a second run; `'open'` runs
   * the handler without the key's protection (a retry during the outage may run it again) and logs a
   * warning.
   */
  failMode?: 'closed' | 'open';
  /**
   * For a handler that writes its own response (`@Res()` without `passthrough`), whose answer the
   * interceptor cannot see: the handler records what it sent with `@CurrentIdempotency()`'s
   * `store({ status, body, headers })`, and a replay is sent by the interceptor through the HTTP
   * adapter (the handler does not run). An answer not recorded is not stored (logged). Default `false`.
   */
  manual?: boolean;
}

/** What a `manual` `@Idempotent()` handler records of the answer it sent, for replays. */
export interface IdempotentAnswer {
  /** The status sent. */
  status: number;
  /** The body sent: a string, or a JSON value (sent as JSON on replay). */
  body: unknown;
  /** Headers to send again with a replay (e.g. `content-type`). */
  headers?: Record<string, string>;
}

/** Given to a `manual` `@Idempotent()` handler by `@CurrentIdempotency()`. */
export interface IdempotentExchange {
  /** The idempotency key of this request. */
  readonly key: string;
  /** Records the answer the handler sends, so that retries get it (call it once, before returning). */
  store(answer: IdempotentAnswer): void;
}

/** The values of `failMode`. */
const FAIL_MODES = ['closed', 'open'] as const;

const IDEMPOTENT_OPTION_KEYS = keysOf<IdempotentOptions>({
  header: true,
  required: true,
  scope: true,
  fingerprint: true,
  storeStatus: true,
  headers: true,
  ttlMs: true,
  leaseMs: true,
  waitMs: true,
  maxBodyBytes: true,
  failMode: true,
  manual: true,
});

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = { maxLength: 256, pattern: /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, patternText: 'an HTTP header name' };

/** Checks `@Idempotent()` options at decoration time. */
export function validateIdempotentOptions(options: IdempotentOptions, site: InputSite): void {
  checkObject(options, 'options', site, 'an object of @Idempotent options');
  checkKnownKeys(options, IDEMPOTENT_OPTION_KEYS, site);
  if (options.header !== undefined) checkText(options.header, 'header', site, HEADER_NAME, 'option');
  if (options.required !== undefined) checkBoolean(options.required, 'required', site);
  if (options.failMode !== undefined) checkChoice(options.failMode, 'failMode', site, FAIL_MODES);
  if (options.manual !== undefined) checkBoolean(options.manual, 'manual', site);
  for (const name of ['scope', 'fingerprint', 'storeStatus'] as const) {
    if (options[name] !== undefined) checkFunction(options[name], name, site);
  }
  if (options.headers !== undefined) {
    if (!Array.isArray(options.headers)) fail(site, 'headers', mustBe('headers', 'an array of header names', options.headers));
    options.headers.forEach((name, i) => checkText(name, `headers[${i}]`, site, HEADER_NAME, 'option'));
  }
  const { ttlMs, leaseMs, waitMs, maxBodyBytes } = options;
  validateRunOptions({ ttlMs, leaseMs, waitMs }, site);
  if (maxBodyBytes !== undefined) checkInteger(maxBodyBytes, 'maxBodyBytes', site, 1, MAX_STORED_BYTES);
}
