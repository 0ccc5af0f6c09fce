/**
 * The plan cache on its own (no Redis involved: a plan is data built from rules). The scripts are
 * stand-in names here: the cache only picks one per plan.
 */
import { KeyBuilder, RateLimitInputError, type RateLimitRule } from 'nest-redis-lua';
import { inputSite } from '../../lib/core/validation';
import { resolveRouteRules } from '../../lib/rate-limit/rate-limit.rules';
import { RulePlans } from '../../lib/rate-limit/rule-plan';

const SCRIPTS = {
  'sliding-log': 'script:l',
  'sliding-window': 'script:s',
  'token-bucket': 'script:t',
  'fixed-window': 'script:f',
  mixed: 'script:mixed',
} as const;
const SITE = inputSite('RateLimiterService.consume', RateLimitInputError);

describe('RulePlans', () => {
  const plans = () => new RulePlans(SCRIPTS, new KeyBuilder('nrl'), {});

  it('resolves a rule once per rules object and reuses the plan while its fields are unchanged', () => {
    const cache = plans();
    const rule: RateLimitRule = { limit: 10, windowMs: 1_000 };
    const first = cache.get(rule, SITE);
    expect(cache.get(rule, SITE)).toBe(first);
    expect(first).toMatchObject({
      rules: [{ limit: 10, windowMs: 1_000, algorithm: 'sliding-log', name: 'default' }],
      script: 'script:l',
      consumeArgs: ['10', '1000'],
      ruleArgs: ['l', '10', '1000'],
      smallestLimit: 10,
    });
    expect(first.keyOf[0]('user:1')).toBe('nrl:rl:{user%3A1}:l:1000:10');
    expect(Object.isFrozen(first.publicRules[0])).toBe(true);
  });

  it('resolves again when the object was mutated; a new object with the same values shares the plan', () => {
    const cache = plans();
    const rule: RateLimitRule = { limit: 10, windowMs: 1_000 };
    const first = cache.get(rule, SITE);
    rule.limit = 20;
    const mutated = cache.get(rule, SITE);
    expect(mutated).not.toBe(first);
    expect(mutated.rules[0].limit).toBe(20);
    expect(cache.get({ limit: 20, windowMs: 1_000 }, SITE)).toBe(mutated);
    const list = [rule, { limit: 5, windowMs: 60_000, algorithm: 'token-bucket' as const }];
    const several = cache.get(list, SITE);
    expect(cache.get(list, SITE)).toBe(several);
    list[1].limit = 6;
    expect(cache.get(list, SITE)).not.toBe(several);
  });

  it('a fresh literal per call (the README shape) finds the plan by value; only identical values and types share one', () => {
    const cache = plans();
    const plan = cache.get({ limit: 3, windowMs: 600_000 }, SITE);
    expect(cache.get({ limit: 3, windowMs: 600_000 }, SITE)).toBe(plan);
    expect(cache.get({ windowMs: 600_000, limit: 3, algorithm: undefined }, SITE)).toBe(plan);
    expect(cache.get([{ limit: 3, windowMs: 600_000 }], SITE)).not.toBe(plan); // another shape, same rules
    expect(cache.get([{ limit: 3, windowMs: 600_000 }], SITE).rules).toEqual(plan.rules);
    // Values that print the same but are not the same values are resolved (and refused) every time.
    const lookalikes: unknown[] = [
      { limit: '3', windowMs: 600_000 },
      { limit: 3, windowMs: '600000' },
      { limit: 3, windowMs: 600_000, algoritm: 'fixed-window' },
      { limit: 3, windowMs: 600_000, algorithm: 'sliding-log|x' },
      { limit: 3, windowMs: 600_000, name: 42 },
    ];
    for (const rule of lookalikes) {
      for (let i = 0; i < 2; i++) expect(() => cache.get(rule as RateLimitRule, SITE)).toThrow(RateLimitInputError);
    }
    // Distinct names, distinct plans (names are length-prefixed in the key besides).
    const a = cache.get(
      [
        { limit: 1, windowMs: 1, name: 'ab' },
        { limit: 2, windowMs: 2, name: 'c' },
      ],
      SITE,
    );
    const b = cache.get(
      [
        { limit: 1, windowMs: 1, name: 'a' },
        { limit: 2, windowMs: 2, name: 'bc' },
      ],
      SITE,
    );
    expect(a).not.toBe(b);
    expect([a.rules.map((r) => r.name), b.rules.map((r) => r.name)]).toEqual([
      ['ab', 'c'],
      ['a', 'bc'],
    ]);
  });

  it('the by-value cache is bounded: the oldest shape is resolved again after 1000 newer ones', () => {
    const cache = plans();
    const first = cache.get({ limit: 1, windowMs: 1_000 }, SITE);
    for (let i = 2; i <= 1_001; i++) cache.get({ limit: i, windowMs: 1_000 }, SITE);
    expect(cache.get({ limit: 1, windowMs: 1_000 }, SITE)).not.toBe(first);
    expect(cache.get({ limit: 1_001, windowMs: 1_000 }, SITE)).toBe(cache.get({ limit: 1_001, windowMs: 1_000 }, SITE));
  });

  it('picks the algorithm script for one algorithm and the mixed one for several', () => {
    const cache = plans();
    expect(
      cache.get(
        [
          { limit: 1, windowMs: 1, algorithm: 'fixed-window' },
          { limit: 2, windowMs: 1, algorithm: 'fixed-window' },
        ],
        SITE,
      ).script,
    ).toBe('script:f');
    const mixed = cache.get(
      [
        { limit: 1, windowMs: 1, algorithm: 'fixed-window' },
        { limit: 2, windowMs: 1 },
      ],
      SITE,
    );
    expect(mixed).toMatchObject({ script: 'script:mixed', consumeArgs: undefined, smallestLimit: 1 });
    expect(mixed.rules.map((r) => r.name)).toEqual(['rule1', 'rule2']);
  });

  it('rejects rules that cannot be resolved with the site error, and caches nothing for them', () => {
    const cache = plans();
    const bad = { limit: 0, windowMs: 1_000 };
    expect(() => cache.get(bad, SITE)).toThrow(RateLimitInputError);
    expect(() => cache.get(bad, SITE)).toThrow(
      /RateLimiterService\.consume: option "limit" must be an integer between 1 and 1000000, got 0/,
    );
    bad.limit = 3;
    expect(cache.get(bad, SITE).rules[0].limit).toBe(3);
  });
});

describe('route rules', () => {
  const site = inputSite('@RateLimit on Reports.export', RateLimitInputError);

  it('a tier function that returns no number is an error, never the module default', () => {
    const tier = [{ limit: () => 5, windowMs: 1_000 }];
    expect(() => resolveRouteRules(tier, [undefined], { limit: 100 }, site)).toThrow(
      /option "limit" must be an integer between 1 and 1000000, got undefined/,
    );
    expect(() => resolveRouteRules(tier, [null as unknown as number], { limit: 100 }, site)).toThrow(RateLimitInputError);
    expect(resolveRouteRules(tier, [5], { limit: 100 }, site)[0].limit).toBe(5);
  });

  it('a rule without a limit takes the module default, and fails naming the option when there is none', () => {
    expect(resolveRouteRules([{ windowMs: 1_000 }], [undefined], { limit: 100 }, site)[0].limit).toBe(100);
    expect(() => resolveRouteRules([{ windowMs: 1_000 }], [undefined], {}, site)).toThrow(
      /@RateLimit on Reports\.export: option "limit" is missing and forRoot\(\{ rateLimit \}\) has no default/,
    );
  });
});
