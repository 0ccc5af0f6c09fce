/**
 * How the library words what it says: every error message and log line starts with the package name
 * and the place that speaks (`RateLimiterService.consume`, `@WithLock on Orders.pay`,
 * `RedisLuaModule.forRoot({ lock })`), then says what is wrong and what was given. Configuration
 * options are quoted with the word "option" (`option "ttlMs"`); call arguments are named bare
 * (`resource`, `cost`).
 */

/** The name every message starts with. */
export const PACKAGE = 'nest-redis-lua';

/** `nest-redis-lua: <where>: <text>`, or `nest-redis-lua: <text>` for the module's own options. */
export function message(where: string, text: string): string {
  return where === '' ? `${PACKAGE}: ${text}` : `${PACKAGE}: ${where}: ${text}`;
}

/** A value as a message shows it: numbers and `undefined` as such, strings and objects as JSON. */
export function describeValue(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'number' || typeof value === 'bigint' || value === undefined || typeof value === 'symbol') return String(value);
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    return String(value);
  }
}

/** `option "<field>" must be <expectation>, got <value>` (an option), or `<field> must be ...` (an argument). */
export function mustBe(field: string, expectation: string, value: unknown, kind: 'option' | 'argument' = 'option'): string {
  return `${kind === 'option' ? `option "${field}"` : field} must be ${expectation}, got ${describeValue(value)}`;
}
