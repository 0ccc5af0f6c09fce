import type { RateLimitResult, ResolvedRateLimitRule } from './rate-limit.options';

/**
 * `failMode: 'local'`: while Redis cannot decide, each process limits with this in-memory limiter,
 * rule for rule with the same algorithms, all rules or none (like the scripts), keyed by the rules'
 * Redis keys. Its counts are its own: N processes admit up to N times a limit (scale it down with
 * `localLimitFactor`), and they are not carried over to Redis when it answers again. Bounded: at most
 * `capacity` keys, the least recently used forgotten first.
 * @internal
 */
export class LocalLimiter {
  private readonly states = new Map<string, RuleState>();

  constructor(
    private readonly capacity: number,
    private readonly factor: number,
  ) {}

  /**
   * Checks `cost` units against every rule (`keys[i]` is rule i's key) and, for a consume, records
   * them in all or none. The result is marked `degraded`, as every answer given without Redis.
   */
  decide(
    op: 'c' | 'p',
    keys: readonly string[],
    rules: readonly ResolvedRateLimitRule[],
    publicRules: ReadonlyArray<RateLimitResult['rule']>,
    cost: number,
    now = performance.now(),
  ): RateLimitResult {
    const checks = rules.map((rule, i) => {
      const limit = Math.max(1, Math.floor(rule.limit * this.factor));
      const state = this.state(keys[i], rule.algorithm);
      return { limit, state, window: rule.windowMs, ...state.check(now, rule.windowMs, limit, cost) };
    });
    const allowed = checks.every((check) => check.ok);
    if (allowed && op === 'c') for (const check of checks) check.state.record(now, check.window, check.limit, cost);
    // The tightest rule, as the scripts pick it: when denied, the denying rule that frees last;
    // otherwise the one with the fewest units left.
    let pick = 0;
    for (let i = 1; i < checks.length; i++) {
      const [best, next] = [checks[pick], checks[i]];
      const better = allowed ? next.avail < best.avail : !next.ok && (best.ok || next.retry > best.retry);
      if (better) pick = i;
    }
    const chosen = checks[pick];
    const taken = allowed && op === 'c' ? cost : 0;
    return {
      allowed,
      limit: chosen.limit,
      remaining: Math.max(0, chosen.avail - taken),
      resetMs: Math.ceil(chosen.state.resetMs(now, chosen.window, chosen.limit)),
      retryAfterMs: allowed ? 0 : Math.ceil(chosen.retry),
      rule: publicRules[pick],
      degraded: true,
    };
  }

  /** The state of one rule's key, created on first use, kept most recently used. */
  private state(key: string, algorithm: ResolvedRateLimitRule['algorithm']): RuleState {
    let state = this.states.get(key);
    if (state) {
      this.states.delete(key);
    } else {
      state = newState(algorithm);
      if (this.states.size >= this.capacity) this.states.delete(this.states.keys().next().value as string);
    }
    this.states.set(key, state);
    return state;
  }
}

/** One rule's count in memory; times in ms of `performance.now()`. */
interface RuleState {
  check(now: number, window: number, limit: number, cost: number): { ok: boolean; avail: number; retry: number };
  record(now: number, window: number, limit: number, cost: number): void;
  resetMs(now: number, window: number, limit: number): number;
}

function newState(algorithm: ResolvedRateLimitRule['algorithm']): RuleState {
  switch (algorithm) {
    case 'sliding-log':
      return new SlidingLog();
    case 'sliding-window':
      return new SlidingWindow();
    case 'token-bucket':
      return new TokenBucket();
    case 'fixed-window':
      return new FixedWindow();
  }
}

/** The times of the admitted units of the last window, oldest first. */
class SlidingLog implements RuleState {
  private hits: number[] = [];

  check(now: number, window: number, limit: number, cost: number) {
    let expired = 0;
    while (expired < this.hits.length && this.hits[expired] <= now - window) expired++;
    if (expired > 0) this.hits = this.hits.slice(expired);
    const avail = Math.max(0, limit - this.hits.length);
    if (this.hits.length + cost <= limit) return { ok: true, avail, retry: 0 };
    const deciding = this.hits[Math.min(this.hits.length - 1, this.hits.length + cost - limit - 1)];
    return { ok: false, avail, retry: deciding === undefined ? window : deciding + window - now };
  }

  record(now: number, _window: number, _limit: number, cost: number): void {
    for (let i = 0; i < cost; i++) this.hits.push(now);
  }

  resetMs(now: number, window: number): number {
    const newest = this.hits[this.hits.length - 1];
    return newest === undefined ? 0 : Math.max(0, newest + window - now);
  }
}

/** Two fixed buckets, the previous weighted by its overlap with the window. */
class SlidingWindow implements RuleState {
  private index = 0;
  private current = 0;
  private previous = 0;

  private roll(now: number, window: number): number {
    const index = Math.floor(now / window);
    if (index !== this.index) {
      this.previous = index === this.index + 1 ? this.current : 0;
      this.current = 0;
      this.index = index;
    }
    return window - (now - index * window);
  }

  check(now: number, window: number, limit: number, cost: number) {
    const rest = this.roll(now, window);
    const used = (this.previous * rest) / window + this.current;
    const avail = Math.max(0, Math.floor(limit - used));
    if (used + cost <= limit) return { ok: true, avail, retry: 0 };
    const retry =
      this.current + cost <= limit
        ? window - ((limit - this.current - cost) * window) / this.previous - (window - rest)
        : rest + window - ((limit - cost) * window) / Math.max(1, this.current);
    return { ok: false, avail, retry: Math.max(1, retry) };
  }

  record(now: number, window: number, _limit: number, cost: number): void {
    this.roll(now, window);
    this.current += cost;
  }

  resetMs(now: number, window: number): number {
    const rest = this.roll(now, window);
    return this.current > 0 ? rest + window : this.previous > 0 ? rest : 0;
  }
}

/** GCRA: the theoretical arrival time. */
class TokenBucket implements RuleState {
  private tat = 0;

  check(now: number, window: number, limit: number, cost: number) {
    const interval = window / limit;
    const tat = Math.max(this.tat, now);
    const avail = Math.max(0, Math.floor((interval * limit - (tat - now)) / interval));
    const ahead = tat - now + cost * interval;
    return ahead <= interval * limit ? { ok: true, avail, retry: 0 } : { ok: false, avail, retry: ahead - interval * limit };
  }

  record(now: number, window: number, limit: number, cost: number): void {
    this.tat = Math.max(this.tat, now) + (cost * window) / limit;
  }

  resetMs(now: number): number {
    return Math.max(0, this.tat - now);
  }
}

/** A counter whose window starts at its first admitted unit. */
class FixedWindow implements RuleState {
  private count = 0;
  private end = 0;

  check(now: number, _window: number, limit: number, cost: number) {
    if (now >= this.end) this.count = 0;
    const avail = Math.max(0, limit - this.count);
    return this.count + cost <= limit ? { ok: true, avail, retry: 0 } : { ok: false, avail, retry: this.end - now };
  }

  record(now: number, window: number, _limit: number, cost: number): void {
    if (now >= this.end) {
      this.count = 0;
      this.end = now + window;
    }
    this.count += cost;
  }

  resetMs(now: number): number {
    return this.count > 0 ? Math.max(0, this.end - now) : 0;
  }
}
