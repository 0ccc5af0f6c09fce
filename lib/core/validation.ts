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

/** An `AbortSignal` (option `signal`). */
export function checkSignal(value: unknown, field: string, site: InputSite): AbortSignal {
  if (value instanceof AbortSignal) return value;
  return reject(site, field, 'an AbortSignal', value, 'option');
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

/**
 * The index of the first lone UTF-16 surrogate of `text`, or -1. Redis receives text as UTF-8, where
 * a lone surrogate becomes U+FFFD: `'\ud800'` and `'\udbff'` would be one key, one member.
 */
export function loneSurrogateAt(text: string): number {
  if (text.isWellFormed()) return -1;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    else return i;
  }
  return -1;
}

/** `<name> must be well-formed Unicode: ...` for text holding a lone surrogate at `index`. */
export function loneSurrogateText(name: string, text: string, index: number): string {
  const unit = text.charCodeAt(index).toString(16).padStart(4, '0');
  return `${name} must be well-formed Unicode, but holds a lone surrogate (\\u${unit}) at index ${index}, which Redis would receive as U+FFFD`;
}

/** A non-empty string within `rule`, without lone surrogates (see {@link loneSurrogateAt}). */
export function checkText(value: unknown, field: string, site: InputSite, rule: TextRule = {}, kind: FieldKind = 'argument'): string {
  if (typeof value !== 'string' || value.length === 0) return reject(site, field, 'a non-empty string', value, kind);
  const name = kind === 'option' ? `option "${field}"` : field;
  if (!value.isWellFormed()) return fail(site, field, loneSurrogateText(name, value, loneSurrogateAt(value)));
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

/**
 * Throws unless every own key of `value` is one of `known`, naming the unknown key and the nearest
 * known one: an option that is misspelt (`ratelimit`) or not supported would be ignored otherwise.
 * `path` is prepended to the names (`rateLimit.`, `rules[0].`).
 */
export function checkKnownKeys(value: object, known: readonly string[], site: InputSite, path = '', kind: FieldKind = 'option'): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const field = `${path}${key}`;
    const nearest = nearestName(key, known);
    const hint = nearest === undefined ? `known: ${known.join(', ')}` : `did you mean "${path}${nearest}"?`;
    fail(site, field, `unknown ${kind === 'option' ? 'option' : 'argument'} "${field}" (${hint})`);
  }
}

/** The known name closest to `name` (case first, then edit distance), if it is close enough to be a typo. */
function nearestName(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameCase = known.find((k) => k.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Levenshtein distance (two rows): option names are short. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The keys of an options type, as a list checked by the compiler to hold every key: `keysOf<Options>({ a: true, b: true })`. */
export function keysOf<T extends object>(keys: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys);
}
