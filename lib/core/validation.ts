import { RedisLuaInputError, type InputErrorClass } from './errors';
import { message, mustBe } from './messages';

/**
 * The one way the library checks a value it is given (a call's argument, a decorator's option, a
 * module option): each check returns the value when it is good and otherwise throws the caller's
 * input error class (a {@link RedisLuaInputError} subclass) with the field and a message in the
 * library's style (see ./messages). Checks allocate nothing when the value is good: they run on
 * every call of the hot paths.
 */

/** Who checks: the place messages name and the error class raised. Make one per method, not per call. */
export interface InputSite {
  /** e.g. `LockService.acquire`, `@RateLimit on Orders.create`, `RedisLuaModule.forRoot({ lock })`; `''` for module options. */
  readonly where: string;
  readonly error: InputErrorClass;
}

/** Whether a field is a configuration option (`option "ttlMs"`) or a call argument (`resource`). */
export type FieldKind = 'option' | 'argument';

/** The longest delay a Node.js timer can wait for, in ms: the bound of every duration. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A site: where the checks run and which error class they throw. */
export function inputSite(where: string, error: InputErrorClass = RedisLuaInputError): InputSite {
  return { where, error };
}

/** Throws the site's error for `field` with `text` (already worded: see {@link mustBe}). */
export function fail(site: InputSite, field: string, text: string): never {
  throw new site.error(message(site.where, text), field);
}

/** Throws unless `value` is `expected`-shaped; `expectation` words it ("an integer between 1 and 5"). */
function reject(site: InputSite, field: string, expectation: string, value: unknown, kind: FieldKind): never {
  return fail(site, field, mustBe(field, expectation, value, kind));
}

/** An integer from `min` to `max` (inclusive). */
export function checkInteger(value: unknown, field: string, site: InputSite, min: number, max: number, kind: FieldKind = 'option'): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  return reject(site, field, integerExpectation(min, max), value, kind);
}

function integerExpectation(min: number, max: number): string {
  if (max === Number.MAX_SAFE_INTEGER) {
    if (min === 1) return 'a positive safe integer';
    if (min === Number.MIN_SAFE_INTEGER) return 'a safe integer';
    return `a safe integer >= ${min}`;
  }
  return `an integer between ${min} and ${max}`;
}

/** A whole number of milliseconds: at least 1 (or 0 with `allowZero`), at most `max` (a timer's limit by default). */
export function checkDuration(
  value: unknown,
  field: string,
  site: InputSite,
  allowZero = false,
  max = MAX_TIMER_MS,
  kind: FieldKind = 'option',
): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= (allowZero ? 0 : 1) && value <= max) return value;
  return reject(site, field, `${allowZero ? 'an integer >= 0' : 'a positive integer'} (ms, at most ${max})`, value, kind);
}

/** A finite number (no NaN, no ±Infinity). */
export function checkFinite(value: unknown, field: string, site: InputSite, kind: FieldKind = 'argument'): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return reject(site, field, 'a finite number', value, kind);
}

/** One of `choices`. */
export function checkChoice<T extends string>(
  value: unknown,
  field: string,
  site: InputSite,
  choices: readonly T[],
  kind: FieldKind = 'option',
): T {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  return reject(site, field, `one of ${choices.join(', ')}`, value, kind);
}

/** `true` or `false`. */
export function checkBoolean(value: unknown, field: string, site: InputSite, kind: FieldKind = 'option'): boolean {
  if (typeof value === 'boolean') return value;
  return reject(site, field, 'true or false', value, kind);
}

/** A function; `what` says what it is for ("a function of the execution context"). */
export function checkFunction<T>(value: T, field: string, site: InputSite, what = 'a function', kind: FieldKind = 'option'): T {
  if (typeof value === 'function') return value;
  return reject(site, field, what, value, kind);
}

/** A plain object (options, a rule). */
export function checkObject<T>(value: T, field: string, site: InputSite, what = 'an object', kind: FieldKind = 'option'): T {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value;
  return reject(site, field, what, value, kind);
}

/** Constraints of {@link checkText}. */
export interface TextRule {
  /** Most UTF-8 bytes. */
  readonly maxBytes?: number;
  /** Most UTF-16 code units (JavaScript's `length`). */
  readonly maxLength?: number;
  /** A pattern the whole text must match, and how to word it ("1-64 letters, digits, ..."). */
  readonly pattern?: RegExp;
  readonly patternText?: string;
}

/** A non-empty string within `rule`. */
export function checkText(value: unknown, field: string, site: InputSite, rule: TextRule = {}, kind: FieldKind = 'argument'): string {
  if (typeof value !== 'string' || value.length === 0) return reject(site, field, 'a non-empty string', value, kind);
  const name = kind === 'option' ? `option "${field}"` : field;
  if (rule.maxLength !== undefined && value.length > rule.maxLength) {
    return fail(site, field, `${name} must be at most ${rule.maxLength} characters long, got ${value.length}`);
  }
  if (rule.maxBytes !== undefined) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > rule.maxBytes) return fail(site, field, `${name} must be at most ${rule.maxBytes} bytes (UTF-8), got ${bytes}`);
  }
  if (rule.pattern !== undefined && !rule.pattern.test(value))
    return reject(site, field, rule.patternText ?? `text matching ${rule.pattern}`, value, kind);
  return value;
}
