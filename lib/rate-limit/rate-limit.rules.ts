import {
  checkBoolean,
  checkChoice,
  checkFunction,
  checkInteger,
  checkKnownKeys,
  checkObject,
  checkText,
  fail,
  inputSite,
  keysOf,
  type InputSite,
} from '../core/validation';
import { mustBe } from '../core/messages';
import { RateLimitInputError } from './rate-limit.errors';
import {
  DEFAULT_RATE_LIMIT_ALGORITHM,
  MAX_RATE_LIMIT,
  MAX_WINDOW_MS,
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type RateLimitFailMode,
  type RateLimitHeaderOptions,
  type RateLimitModuleOptions,
  type RateLimitRouteRule,
  type RateLimitRule,
  type ResolvedRateLimitRule,
} from './rate-limit.options';

/**
 * Rules and rate-limit options: checked and completed in one place for the three callers, the
 * service (a call's rules), the guard (a route's rules, tier limits evaluated) and the boot check (a
 * route's rules with constant limits), and for `forRoot({ rateLimit })`.
 */

const ALGORITHMS = Object.keys(RATE_LIMIT_ALGORITHMS) as RateLimitAlgorithm[];
const FAIL_MODES: readonly RateLimitFailMode[] = ['open', 'closed', 'local'];
/** The longest `timeoutMs`: a hit waiting longer for Redis is no longer a rate-limit check. */
export const MAX_RATE_LIMIT_TIMEOUT_MS = 60_000;
/** A rule name goes into headers: 1-64 characters of letters, digits, `_`, `.` or `-`. */
const RULE_NAME = { pattern: /^[A-Za-z0-9_.-]{1,64}$/, patternText: '1-64 characters of letters, digits, "_", "." or "-"' };

/** The keys each options object may have: any other is a typo or an unsupported option, refused. */
const RULE_KEYS = keysOf<RateLimitRouteRule>({ limit: true, windowMs: true, algorithm: true, name: true, blockMs: true });
const HEADER_KEYS = keysOf<RateLimitHeaderOptions>({ ietf: true, legacy: true });
const MODULE_KEYS = keysOf<RateLimitModuleOptions>({
  limit: true,
  windowMs: true,
  algorithm: true,
  failMode: true,
  timeoutMs: true,
  headers: true,
  localCacheSize: true,
  onUnavailable: true,
  ipv6Subnet: true,
  localLimitFactor: true,
  bans: true,
});

/** The site of `forRoot({ rateLimit })` checks. */
export const MODULE_SITE = inputSite('forRoot rateLimit', RateLimitInputError);

/** Checks the fields a rule gives (a limit given as a function is a route's tier, checked when evaluated). */
export function checkRuleFields(rule: Partial<RateLimitRouteRule>, at: string, site: InputSite): void {
  checkObject(rule, at === '' ? 'rule' : at.slice(0, -1), site, 'a rule object');
  checkKnownKeys(rule, RULE_KEYS, site, at);
  if (rule.limit !== undefined && typeof rule.limit !== 'function') checkInteger(rule.limit, `${at}limit`, site, 1, MAX_RATE_LIMIT);
  if (rule.windowMs !== undefined) checkInteger(rule.windowMs, `${at}windowMs`, site, 1, MAX_WINDOW_MS);
  if (rule.algorithm !== undefined) checkChoice(rule.algorithm, `${at}algorithm`, site, ALGORITHMS);
  if (rule.name !== undefined) checkText(rule.name, `${at}name`, site, RULE_NAME, 'option');
  if (rule.blockMs !== undefined) checkInteger(rule.blockMs, `${at}blockMs`, site, 1, MAX_WINDOW_MS);
}

/** `failMode` where given. */
export function checkFailMode(value: unknown, field: string, site: InputSite): void {
  if (value !== undefined) checkChoice(value, field, site, FAIL_MODES);
}

/** `timeoutMs` where given. */
export function checkTimeout(value: unknown, field: string, site: InputSite): void {
  if (value !== undefined) checkInteger(value, field, site, 1, MAX_RATE_LIMIT_TIMEOUT_MS);
}

/**
 * Checks and completes rules: every field valid, the default algorithm and names filled in, no two
 * rules alike, token-bucket rates a whole number of µs per unit.
 */
export function resolveRules(
  rules: RateLimitRule | readonly RateLimitRule[],
  site: InputSite,
  defaults: Pick<RateLimitModuleOptions, 'algorithm'> = {},
): ResolvedRateLimitRule[] {
  const list: readonly RateLimitRule[] = Array.isArray(rules) ? rules : [rules as RateLimitRule];
  if (list.length === 0) fail(site, 'rules', 'give at least one rate-limit rule');
  const resolved = list.map((rule, i): ResolvedRateLimitRule => {
    const at = list.length === 1 ? '' : `rules[${i}].`;
    checkRuleFields(rule, at, site);
    checkInteger(rule.limit, `${at}limit`, site, 1, MAX_RATE_LIMIT);
    checkInteger(rule.windowMs, `${at}windowMs`, site, 1, MAX_WINDOW_MS);
    const algorithm = rule.algorithm ?? defaults.algorithm ?? DEFAULT_RATE_LIMIT_ALGORITHM;
    if (algorithm === 'token-bucket' && rule.limit > rule.windowMs * 1000) {
      // The bucket's emission interval is a whole number of microseconds.
      fail(
        site,
        `${at}limit`,
        `option "${at}limit" of a token-bucket rule can be at most 1000 per ms of its window (${rule.windowMs * 1000}), got ${rule.limit}`,
      );
    }
    const name = rule.name ?? (list.length === 1 ? 'default' : `rule${i + 1}`);
    const resolvedRule = { limit: rule.limit, windowMs: rule.windowMs, algorithm, name };
    return rule.blockMs === undefined ? resolvedRule : { ...resolvedRule, blockMs: rule.blockMs };
  });
  const seen = new Set<string>();
  for (const rule of resolved) {
    const identity = `${rule.algorithm}/${rule.windowMs}/${rule.limit}`;
    if (seen.has(identity)) fail(site, 'rules', `two rules are the same (${rule.limit} per ${rule.windowMs} ms, ${rule.algorithm})`);
    seen.add(identity);
  }
  return resolved;
}

/**
 * A route's rules (as `@RateLimit` declared them) with the module's defaults filled in and `limits[i]`
 * standing for rule i's declared limit, evaluated where it is a function (the guard evaluates those
 * per request; the boot check only resolves routes without any), checked.
 */
export function resolveRouteRules(
  declared: ReadonlyArray<Partial<RateLimitRouteRule>>,
  limits: ReadonlyArray<number | undefined>,
  defaults: RateLimitModuleOptions,
  site: InputSite,
): ResolvedRateLimitRule[] {
  const rules = declared.map((rule, i): RateLimitRule => {
    const at = declared.length === 1 ? '' : `rules[${i}].`;
    // A declared limit (a number, or a tier function's result) is checked as given: a tier that
    // returns undefined is an error, never the module default.
    const limit = rule.limit === undefined ? defaults.limit : limits[i];
    const windowMs = rule.windowMs ?? defaults.windowMs;
    if (rule.limit === undefined && limit === undefined) missingDefault(site, `${at}limit`);
    if (windowMs === undefined) missingDefault(site, `${at}windowMs`);
    return { limit: limit as number, windowMs, algorithm: rule.algorithm, name: rule.name, blockMs: rule.blockMs };
  });
  return resolveRules(rules, site, defaults);
}

/** A route rule gives no `field` and the module has no default for it. */
export function missingDefault(site: InputSite, field: string): never {
  return fail(site, field, `option "${field}" is missing and forRoot({ rateLimit }) has no default`);
}

/** The limits of a route's rules when none is a function of the request (else undefined). */
export function constantLimits(declared: ReadonlyArray<Partial<RateLimitRouteRule>>): Array<number | undefined> | undefined {
  if (declared.some((rule) => typeof rule.limit === 'function')) return undefined;
  return declared.map((rule) => rule.limit as number | undefined);
}

/** Checks `forRoot({ rateLimit })` at boot. */
export function validateRateLimitModuleOptions(section: unknown): void {
  if (section === undefined) return;
  const options = checkObject(section as RateLimitModuleOptions, 'rateLimit', MODULE_SITE, 'an object of rate-limit options');
  checkKnownKeys(options, MODULE_KEYS, MODULE_SITE, 'rateLimit.');
  if (options.limit !== undefined) checkInteger(options.limit, 'rateLimit.limit', MODULE_SITE, 1, MAX_RATE_LIMIT);
  if (options.windowMs !== undefined) checkInteger(options.windowMs, 'rateLimit.windowMs', MODULE_SITE, 1, MAX_WINDOW_MS);
  if (options.algorithm !== undefined) checkChoice(options.algorithm, 'rateLimit.algorithm', MODULE_SITE, ALGORITHMS);
  checkFailMode(options.failMode, 'rateLimit.failMode', MODULE_SITE);
  checkTimeout(options.timeoutMs, 'rateLimit.timeoutMs', MODULE_SITE);
  if (options.localCacheSize !== undefined)
    checkInteger(options.localCacheSize, 'rateLimit.localCacheSize', MODULE_SITE, 0, Number.MAX_SAFE_INTEGER);
  if (options.onUnavailable !== undefined) checkFunction(options.onUnavailable, 'rateLimit.onUnavailable', MODULE_SITE);
  if (options.headers !== undefined) {
    checkObject(options.headers, 'rateLimit.headers', MODULE_SITE, 'an object: { ietf?, legacy? }');
    checkKnownKeys(options.headers, HEADER_KEYS, MODULE_SITE, 'rateLimit.headers.');
    for (const flag of HEADER_KEYS) {
      const value = options.headers[flag as keyof RateLimitHeaderOptions];
      if (value !== undefined) checkBoolean(value, `rateLimit.headers.${flag}`, MODULE_SITE);
    }
  }
  if (options.bans !== undefined) checkBoolean(options.bans, 'rateLimit.bans', MODULE_SITE);
  if (options.ipv6Subnet !== undefined) checkInteger(options.ipv6Subnet, 'rateLimit.ipv6Subnet', MODULE_SITE, 1, 128);
  const factor = options.localLimitFactor;
  if (factor !== undefined && !(typeof factor === 'number' && factor > 0 && factor <= 1)) {
    fail(MODULE_SITE, 'rateLimit.localLimitFactor', mustBe('rateLimit.localLimitFactor', 'a number in (0, 1]', factor));
  }
}
