import type { KeyBuilder } from '../scripts/key-builder';
import type { InputSite } from '../core/validation';
import {
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type RateLimitResult,
  type RateLimitRule,
  type ResolvedRateLimitRule,
} from './rate-limit.options';
import { resolveRules } from './rate-limit.rules';

/** The Redis key feature segment of rate-limit keys. */
const FEATURE = 'rl';
/** The segment after the hash tag that marks a scoped key (see {@link identifierOf}). */
const SCOPE_MARKER = 'in';

/**
 * The identifier of a limiter key: its first line. A key `<identifier>\n<scope>` (the guard's are
 * `<tracker>\n<METHOD> <route>`) counts apart from the identifier's other scopes but lives in the
 * identifier's hash tag, with its ban (`block`).
 */
export function identifierOf(key: string): string {
  const newline = key.indexOf('\n');
  return newline < 0 ? key : key.slice(0, newline);
}

/**
 * A rule key factory: `<prefix>:rl:{<key>}:<suffix>` for a key of one line, and
 * `<prefix>:rl:{<identifier>}:in:<scope>:<suffix>` for `<identifier>\n<scope>` (both parts encoded;
 * no unscoped key has `in` after its tag, so the two forms never meet).
 */
export function identifierKeyFactory(keys: KeyBuilder, ...suffix: Array<string | number>): (key: string) => string {
  const plain = keys.keyFactory(FEATURE, ...suffix);
  const scoped = keys.scopedKeyFactory(FEATURE, SCOPE_MARKER, ...suffix);
  return (key) => {
    const newline = key.indexOf('\n');
    return newline < 0 ? plain(key) : scoped(key.slice(0, newline), key.slice(newline + 1));
  };
}

/** The ban key of an identifier (see `RateLimiterService.block`): `<prefix>:rl:{<identifier>}:ban`. */
export function banKeyFactory(keys: KeyBuilder): (identifier: string) => string {
  return keys.keyFactory(FEATURE, 'ban');
}

/** Everything a call needs from its rules, computed once per rules object (see {@link RulePlans}). */
export interface RulePlan<Script> {
  readonly rules: readonly ResolvedRateLimitRule[];
  /** Each rule as results show it (frozen, shared by every result of the plan). */
  readonly publicRules: ReadonlyArray<RateLimitResult['rule']>;
  /** The script: the algorithm's own when every rule has it, otherwise the mixed one. */
  readonly script: Script;
  /** ARGV after `op` and `cost`: algorithm code, limit and window of each rule (decimal strings). */
  readonly ruleArgs: readonly string[];
  /** One rule without a block: the compact ARGV of a consume, `[limit, windowMs]` (the cost follows unless it is 1). */
  readonly consumeArgs?: readonly string[];
  /**
   * Builds each rule's key from the call's key: `<prefix>:rl:{<key>}:<algorithm code>:<windowMs>:<limit>`
   * (a key of several lines: see {@link identifierKeyFactory}).
   */
  readonly keyOf: ReadonlyArray<(key: string) => string>;
  /**
   * When a rule has `blockMs`: each rule's block key (its key followed by `:block`) and block
   * duration (`'0'` for none), which a consume or peek sends after the rules (see lua/includes/rate-limit-driver.lua).
   */
  readonly blocks?: { readonly keyOf: ReadonlyArray<(key: string) => string>; readonly args: readonly string[] };
  /** Each rule's block key, whether or not the rule has a block (a reset lifts any). */
  readonly blockKeys: ReadonlyArray<(key: string) => string>;
  readonly smallestLimit: number;
  /** Every rule can record a hit at a later time (sliding-log, token-bucket): `waitMs` is allowed. */
  readonly waitable: boolean;
}

/** The script of each algorithm, and the one that runs rules of several algorithms together. */
export type RuleScripts<Script> = Readonly<Record<RateLimitAlgorithm | 'mixed', Script>>;

/** How many plans the by-value cache keeps (distinct rule sets of an application are few). */
const MAX_SHAPES = 1_000;

/**
 * The plan cache, in two levels:
 * - by the identity of the rules object (a route's constant, a caller's module-level rule) in a
 *   WeakMap, reused as long as that object's fields still hold the values the plan was made from,
 *   which `unchanged` compares without allocating;
 * - by value (a fresh literal on every call, as the README writes it: `consume(key, { limit: 3,
 *   windowMs: 600_000 })`): a key built from the rules' values and types ({@link shapeKey}) into a
 *   bounded map. Only plain rules of numbers and strings have a key; anything else (a primitive, an
 *   unknown field, a value of another type) is resolved every time, so its error is raised every time.
 * A miss on both is resolved: validation, defaults, key factories, frozen result rules, ARGV strings.
 */
export class RulePlans<Script> {
  private readonly plans = new WeakMap<object, { plan: RulePlan<Script>; snapshot: readonly unknown[] }>();
  private readonly byShape = new Map<string, RulePlan<Script>>();

  constructor(
    private readonly scripts: RuleScripts<Script>,
    private readonly keys: KeyBuilder,
    private readonly defaults: { algorithm?: RateLimitAlgorithm },
  ) {}

  /**
   * The plan of `rules`, resolved (and checked: errors are `site`'s) on first use of the object.
   * @throws RateLimitInputError (the site's class) for rules that cannot be resolved.
   */
  get(rules: RateLimitRule | readonly RateLimitRule[], site: InputSite): RulePlan<Script> {
    const cacheable = typeof rules === 'object' && rules !== null;
    const known = cacheable ? this.plans.get(rules) : undefined;
    if (known && unchanged(known.snapshot, rules)) return known.plan;
    const shape = cacheable ? shapeKey(rules) : undefined;
    const same = shape === undefined ? undefined : this.byShape.get(shape);
    // Found by value: not remembered by identity (a literal is garbage right after the call).
    if (same) return same;
    const plan = this.build(resolveRules(rules, site, this.defaults));
    if (cacheable) this.plans.set(rules, { plan, snapshot: snapshotOf(rules) });
    if (shape !== undefined) {
      if (this.byShape.size >= MAX_SHAPES) this.byShape.delete(this.byShape.keys().next().value as string);
      this.byShape.set(shape, plan);
    }
    return plan;
  }

  private build(resolved: ResolvedRateLimitRule[]): RulePlan<Script> {
    const ruleArgs: string[] = [];
    for (const rule of resolved) ruleArgs.push(RATE_LIMIT_ALGORITHMS[rule.algorithm], String(rule.limit), String(rule.windowMs));
    const algorithm = resolved[0].algorithm;
    const keyParts = (rule: ResolvedRateLimitRule) => [RATE_LIMIT_ALGORITHMS[rule.algorithm], rule.windowMs, rule.limit] as const;
    const blocked = resolved.some((rule) => rule.blockMs !== undefined);
    const blockKeys = resolved.map((rule) => identifierKeyFactory(this.keys, ...keyParts(rule), 'block'));
    return {
      rules: resolved,
      publicRules: resolved.map((r) => Object.freeze({ limit: r.limit, windowMs: r.windowMs, algorithm: r.algorithm, name: r.name })),
      script: resolved.every((r) => r.algorithm === algorithm) ? this.scripts[algorithm] : this.scripts.mixed,
      ruleArgs,
      consumeArgs: resolved.length === 1 && !blocked ? [String(resolved[0].limit), String(resolved[0].windowMs)] : undefined,
      // One hash tag per identifier: every rule's key of one call lives in one cluster slot.
      keyOf: resolved.map((rule) => identifierKeyFactory(this.keys, ...keyParts(rule))),
      blocks: blocked ? { keyOf: blockKeys, args: resolved.map((rule) => String(rule.blockMs ?? 0)) } : undefined,
      blockKeys,
      smallestLimit: resolved.reduce((min, r) => Math.min(min, r.limit), Infinity),
      waitable: resolved.every((r) => r.algorithm === 'sliding-log' || r.algorithm === 'token-bucket'),
    };
  }
}

/** The fields of `rules` a plan depends on, in a flat list (rule objects included, by identity). */
function snapshotOf(rules: RateLimitRule | readonly RateLimitRule[]): unknown[] {
  const list: readonly RateLimitRule[] = Array.isArray(rules) ? rules : [rules as RateLimitRule];
  const values: unknown[] = [list.length];
  for (const rule of list) {
    if (typeof rule !== 'object' || rule === null) values.push(rule);
    else values.push(rule, rule.limit, rule.windowMs, rule.algorithm, rule.name, rule.blockMs);
  }
  return values;
}

/** True if `rules` still has the fields `snapshot` was taken from (no allocation: runs on every call). */
function unchanged(snapshot: readonly unknown[], rules: RateLimitRule | readonly RateLimitRule[]): boolean {
  if (!Array.isArray(rules)) {
    const rule = rules as RateLimitRule;
    return (
      snapshot.length === 7 &&
      snapshot[0] === 1 &&
      snapshot[1] === rule &&
      snapshot[2] === rule.limit &&
      snapshot[3] === rule.windowMs &&
      snapshot[4] === rule.algorithm &&
      snapshot[5] === rule.name &&
      snapshot[6] === rule.blockMs
    );
  }
  const list = rules as readonly RateLimitRule[];
  if (snapshot[0] !== list.length || snapshot.length !== 1 + 6 * list.length) return false;
  for (let i = 0, j = 1; i < list.length; i++, j += 6) {
    const rule = list[i];
    if (
      snapshot[j] !== rule ||
      snapshot[j + 1] !== rule.limit ||
      snapshot[j + 2] !== rule.windowMs ||
      snapshot[j + 3] !== rule.algorithm ||
      snapshot[j + 4] !== rule.name ||
      snapshot[j + 5] !== rule.blockMs
    ) {
      return false;
    }
  }
  return true;
}

/**
 * A key that two rules values share only if they are the same values of the same types: the limit
 * and window as numbers, the algorithm and name as strings (length-prefixed, so no text can run into
 * the next field), or undefined for a value or rule that must be resolved (and checked) every time: not
 * a plain rule object, a field of another type, a field that is not a rule option. Only valid rules
 * are ever stored under a key, so a hit is a rules value that was resolved without error before.
 */
export function shapeKey(rules: RateLimitRule | readonly RateLimitRule[]): string | undefined {
  if (!Array.isArray(rules)) return ruleShape(rules as RateLimitRule);
  let key = `${rules.length}`;
  for (const rule of rules as readonly RateLimitRule[]) {
    const shape = ruleShape(rule);
    if (shape === undefined) return undefined;
    key += `;${shape}`;
  }
  return key;
}

function ruleShape(rule: RateLimitRule): string | undefined {
  if (typeof rule !== 'object' || rule === null) return undefined;
  const { limit, windowMs, algorithm, name, blockMs } = rule;
  if (typeof limit !== 'number' || typeof windowMs !== 'number') return undefined;
  if (blockMs !== undefined && typeof blockMs !== 'number') return undefined;
  if ((algorithm !== undefined && typeof algorithm !== 'string') || (name !== undefined && typeof name !== 'string')) return undefined;
  for (const field in rule) {
    if (field !== 'limit' && field !== 'windowMs' && field !== 'algorithm' && field !== 'name' && field !== 'blockMs') return undefined;
  }
  return `${limit}|${windowMs}|${blockMs ?? '-'}|${algorithm === undefined ? '-' : `${algorithm.length}:${algorithm}`}|${name === undefined ? '-' : `${name.length}:${name}`}`;
}
