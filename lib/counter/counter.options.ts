import { CounterInputError } from './counter.errors';

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

/** Checks a counter key: a non-empty string. */
export function checkCounterKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new CounterInputError('key', `key must be a non-empty string, got ${JSON.stringify(key)}`);
  }
  return key;
}

/** Checks a safe integer; `positive` also requires it to be > 0. */
export function checkCounterInteger(field: string, value: unknown, positive = false): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || (positive && value <= 0)) {
    const wanted = positive ? 'a positive safe integer' : 'a safe integer';
    throw new CounterInputError(field, `${field} must be ${wanted}, got ${String(value)}`);
  }
  return value;
}

/** The `ttlMs` option as a script argument (`''` = none). */
export function ttlArg(options: { ttlMs?: number }): string {
  return options.ttlMs === undefined ? '' : String(checkCounterInteger('ttlMs', options.ttlMs, true));
}
