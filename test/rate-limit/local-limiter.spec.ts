/**
 * The in-memory limiter of `failMode: 'local'` (no Redis: it is what decides while Redis cannot),
 * with the time given, so every assertion is exact: each algorithm admits its limit, frees units as
 * the Redis script would, rules are all or nothing, the factor scales limits, the size is bounded.
 */
import type { RateLimitAlgorithm, ResolvedRateLimitRule } from 'nest-redis-lua';
import { LocalLimiter } from '../../lib/rate-limit/local-limiter';

const rule = (algorithm: RateLimitAlgorithm, limit: number, windowMs: number, name = 'default'): ResolvedRateLimitRule => ({
  algorithm,
  limit,
  windowMs,
  name,
});
const publicOf = (rules: ResolvedRateLimitRule[]) =>
  rules.map(({ limit, windowMs, algorithm, name }) => ({ limit, windowMs, algorithm, name }));

function decider(limiter: LocalLimiter, rules: ResolvedRateLimitRule[], keys = rules.map((_, i) => `k${i}`)) {
  return (at: number, op: 'c' | 'p' = 'c', cost = 1) => limiter.decide(op, keys, rules, publicOf(rules), cost, at);
}

describe('LocalLimiter (failMode local)', () => {
  it.each<RateLimitAlgorithm>(['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window'])(
    '%s: admits the limit, denies with a retry-after, admits again after it; peeks record nothing; every answer is degraded',
    (algorithm) => {
      const decide = decider(new LocalLimiter(100, 1), [rule(algorithm, 3, 1_000)]);
      expect(decide(0, 'p')).toMatchObject({ allowed: true, remaining: 3, degraded: true });
      const admitted = [decide(0), decide(1), decide(2)];
      expect(admitted.map((r) => [r.allowed, r.remaining])).toEqual([
        [true, 2],
        [true, 1],
        [true, 0],
      ]);
      const denied = decide(3);
      expect(denied).toMatchObject({ allowed: false, remaining: 0, degraded: true });
      expect(denied.retryAfterMs).toBeGreaterThan(0);
      expect(denied.retryAfterMs).toBeLessThanOrEqual(2_000);
      expect(decide(3 + denied.retryAfterMs).allowed).toBe(true);
    },
  );

  it('sliding log: exact, each unit frees a window after its own hit', () => {
    const decide = decider(new LocalLimiter(100, 1), [rule('sliding-log', 2, 1_000)]);
    decide(0);
    decide(500);
    expect(decide(999)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    expect(decide(1_000).allowed).toBe(true);
    expect(decide(1_001)).toMatchObject({ allowed: false, retryAfterMs: 499 });
  });

  it('several rules: all or none, the tightest rule reported', () => {
    const rules = [rule('fixed-window', 2, 1_000, 'burst'), rule('sliding-log', 3, 60_000, 'minute')];
    const decide = decider(new LocalLimiter(100, 1), rules);
    expect(decide(0)).toMatchObject({ allowed: true, remaining: 1, rule: { name: 'burst' } });
    decide(1);
    expect(decide(2)).toMatchObject({ allowed: false, rule: { name: 'burst' } });
    // The burst window is over; the minute rule has one unit left (the denied hit took none).
    expect(decide(1_000)).toMatchObject({ allowed: true, remaining: 0, rule: { name: 'minute' } });
    expect(decide(2_000)).toMatchObject({ allowed: false, rule: { name: 'minute' } });
  });

  it('localLimitFactor scales each limit down, never below 1', () => {
    const half = decider(new LocalLimiter(100, 0.5), [rule('fixed-window', 5, 1_000)]);
    expect([half(0), half(1), half(2)].map((r) => r.allowed)).toEqual([true, true, false]);
    const tiny = decider(new LocalLimiter(100, 0.01), [rule('token-bucket', 5, 1_000)]);
    expect([tiny(0), tiny(1)].map((r) => r.allowed)).toEqual([true, false]);
  });

  it('keeps at most its capacity of keys, forgetting the least recently used', () => {
    const limiter = new LocalLimiter(2, 1);
    const one = [rule('fixed-window', 1, 60_000)];
    const at = (key: string) => limiter.decide('c', [key], one, publicOf(one), 1, 0).allowed;
    expect([at('a'), at('b'), at('a')]).toEqual([true, true, false]);
    at('c'); // evicts b (a was used more recently)
    expect([at('a'), at('b')]).toEqual([false, true]);
  });
});
