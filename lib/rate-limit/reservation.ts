import { checkInteger, fail, inputSite, type InputSite } from '../core/validation';
import { RateLimitInputError } from './rate-limit.errors';
import { MAX_RATE_LIMIT, type RateLimitResult } from './rate-limit.options';

const COMMIT = inputSite('RateLimitReservation.commit', RateLimitInputError);
const CANCEL = inputSite('RateLimitReservation.cancel', RateLimitInputError);

/** Gives back (`'r'`) or takes more (`'g'`) units in every rule of the reservation's call. */
export type Adjust = (op: 'r' | 'g', cost: number) => Promise<void>;

/**
 * Units taken now for a cost known later (`RateLimiterService.reserve`): `commit(actualCost)` charges
 * the difference or gives it back, `cancel()` gives everything back. A reservation never settled
 * stays charged. Settled at most once.
 */
export class RateLimitReservation {
  private settled = false;

  /** @internal Built by `RateLimiterService.reserve`. */
  constructor(
    /** The consume's result: when `allowed` is false nothing was taken (and nothing can be settled). */
    readonly result: RateLimitResult,
    /** The units taken by the reservation. */
    readonly cost: number,
    private readonly adjust: Adjust,
  ) {}

  /** True if the units were taken (every rule admitted them). */
  get allowed(): boolean {
    return this.result.allowed;
  }

  /**
   * Settles the reservation at `actualCost` units (default: the reserved cost): gives the difference
   * back, or charges the extra units in every rule, at most what each rule has left (a rule is then
   * used up, never overdrawn). A `degraded` reservation (the fail mode decided it: nothing was taken
   * in Redis) settles without a Redis call.
   * @throws RateLimitInputError when the reservation was denied, is already settled, or `actualCost`
   *   is not an integer between 0 and 1000000.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`
   *   (then the adjustment may or may not have been applied), or refuses the call.
   * @example
   * const reservation = await limiter.reserve(`tokens:${user}`, { limit: 100_000, windowMs: 60_000 }, { cost: 4000 });
   * if (!reservation.allowed) throw new HttpException('Token budget exhausted', 429);
   * const completion = await llm.complete(prompt, { maxTokens: 4000 });
   * await reservation.commit(completion.usage.totalTokens);
   */
  commit(actualCost: number = this.cost): Promise<void> {
    try {
      checkInteger(actualCost, 'actualCost', COMMIT, 0, MAX_RATE_LIMIT, 'argument');
      this.settle(COMMIT);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.result.degraded || actualCost === this.cost) return Promise.resolve();
    return actualCost < this.cost ? this.adjust('r', this.cost - actualCost) : this.adjust('g', actualCost - this.cost);
  }

  /**
   * Gives every reserved unit back (never below empty), as if the call had not been made.
   * @throws RateLimitInputError when the reservation was denied or is already settled.
   * @throws RedisLuaUnavailableError as {@link commit}.
   * @example
   * const reservation = await limiter.reserve(`export:${tenant}`, { limit: 10, windowMs: 3_600_000 });
   * try { await runExport(); await reservation.commit(); } catch (err) { await reservation.cancel(); throw err; }
   */
  cancel(): Promise<void> {
    try {
      this.settle(CANCEL);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.result.degraded ? Promise.resolve() : this.adjust('r', this.cost);
  }

  private settle(site: InputSite): void {
    if (!this.result.allowed) fail(site, 'reservation', 'the reservation was denied: nothing was taken, nothing to settle');
    if (this.settled) fail(site, 'reservation', 'the reservation is already settled (commit or cancel runs once)');
    this.settled = true;
  }
}
