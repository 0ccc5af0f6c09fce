import { checkDuration, checkInteger, checkText, type InputSite } from '../core/validation';

/** Options of {@link BoundedCounterService.increment} and {@link BoundedCounterService.decrement}. */
export interface CounterChangeOptions {
  /**
   * Expiry in ms (positive integer) given to the counter when this change creates it; a counter that
   * already exists keeps its expiry. Without it, a new counter never expires.
   */
  ttlMs?: number;
}

/** Options of {@link BoundedCounterService.set}. */
export interface CounterSetOptions {
  /** Expiry in ms (positive integer). Without it, the counter has no expiry after `set`. */
  ttlMs?: number;
}

/** What `increment` and `decrement` report. */
export interface CounterChangeResult {
  /** False when the change would have passed the bound: nothing was changed. */
  applied: boolean;
  /** The counter's value after the call (unchanged when not applied). */
  value: number;
}

/** A counter key: a non-empty string. */
export function checkCounterKey(key: unknown, site: InputSite): string {
  return checkText(key, 'key', site);
}

/** An amount (positive) or a bound or value (any safe integer). */
export function checkCounterInteger(value: unknown, field: string, site: InputSite, positive = false): number {
  return checkInteger(value, field, site, positive ? 1 : Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'argument');
}

/** The `ttlMs` option as a script argument (`''` = none): a positive integer number of ms. */
export function ttlArg(options: { ttlMs?: number }, site: InputSite): string {
  return options.ttlMs === undefined ? '' : String(checkDuration(options.ttlMs, 'ttlMs', site, false, Number.MAX_SAFE_INTEGER));
}
