import { checkInteger, keysOf, type InputSite } from '../core/validation';
import { validateLockOptions, validateWithLockOptions, type LeaseOptions, type WithLockOptions } from './lock.options';

/** The most permits a semaphore may have. */
export const MAX_SEMAPHORE_PERMITS = 1_000_000;

/** Options of {@link SemaphoreService.acquire} and `withPermit` (the module's `lock` defaults apply to `ttlMs` and `waitMs`). */
export interface AcquireSemaphoreOptions extends LeaseOptions {
  /**
   * How many holders the semaphore admits at once (integer 1-1000000, required). Every caller of
   * one name should give the same number: each acquisition is checked against its own.
   */
  permits: number;
}

/** Options of {@link SemaphoreService.tryAcquire}: one attempt, no waiting. */
export type TryAcquireSemaphoreOptions = Omit<AcquireSemaphoreOptions, 'waitMs' | 'signal'>;

/** Options of the `@WithSemaphore` decorator (module `lock` defaults apply to `ttlMs` and `waitMs`). */
export interface WithSemaphoreOptions extends Omit<WithLockOptions, 'mode' | 'fair' | 'replicas' | 'replicaTimeoutMs'> {
  /** How many requests hold a permit at once, across every instance (integer 1-1000000, required). */
  permits: number;
}

/** The keys each kind of semaphore options may have. */
export const SEMAPHORE_OPTION_KEYS = {
  acquire: keysOf<AcquireSemaphoreOptions>({ permits: true, ttlMs: true, waitMs: true, autoExtend: true, signal: true }),
  tryAcquire: keysOf<TryAcquireSemaphoreOptions>({ permits: true, ttlMs: true, autoExtend: true }),
  withSemaphore: keysOf<WithSemaphoreOptions>({
    permits: true,
    ttlMs: true,
    waitMs: true,
    conflictStatus: true,
    autoExtend: true,
    onLost: true,
  }),
} as const;

/** Checks semaphore options: those of a lock, and `permits` (required). */
export function validateSemaphoreOptions(options: AcquireSemaphoreOptions, site: InputSite, known: readonly string[]): void {
  validateLockOptions(options, site, known);
  checkInteger((options as Partial<AcquireSemaphoreOptions>).permits, 'permits', site, 1, MAX_SEMAPHORE_PERMITS);
}

/** Checks `@WithSemaphore` options at decoration time. */
export function validateWithSemaphoreOptions(options: WithSemaphoreOptions, site: InputSite): void {
  validateWithLockOptions(options, site, SEMAPHORE_OPTION_KEYS.withSemaphore);
  checkInteger((options as Partial<WithSemaphoreOptions> | undefined)?.permits, 'permits', site, 1, MAX_SEMAPHORE_PERMITS);
}
