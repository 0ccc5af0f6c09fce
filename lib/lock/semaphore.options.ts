import { checkInteger, keysOf, type InputSite } from '../core/validation';
import { validateLockOptions, type AcquireLockOptions } from './lock.options';

/** The most permits a semaphore may have. */
export const MAX_SEMAPHORE_PERMITS = 1_000_000;

/** Options of {@link SemaphoreService.acquire} and `withPermit` (the module's `lock` defaults apply to `ttlMs` and `waitMs`). */
export interface AcquireSemaphoreOptions extends AcquireLockOptions {
  /**
   * How many holders the semaphore admits at once (integer 1-1000000, required). Every caller of
   * one name should give the same number: each acquisition is checked against its own.
   */
  permits: number;
}

/** Options of {@link SemaphoreService.tryAcquire}: one attempt, no waiting. */
export type TryAcquireSemaphoreOptions = Omit<AcquireSemaphoreOptions, 'waitMs' | 'signal'>;

/** The keys each kind of semaphore options may have. */
export const SEMAPHORE_OPTION_KEYS = {
  acquire: keysOf<AcquireSemaphoreOptions>({ permits: true, ttlMs: true, waitMs: true, autoExtend: true, signal: true }),
  tryAcquire: keysOf<TryAcquireSemaphoreOptions>({ permits: true, ttlMs: true, autoExtend: true }),
} as const;

/** Checks semaphore options: those of a lock, and `permits` (required). */
export function validateSemaphoreOptions(options: AcquireSemaphoreOptions, site: InputSite, known: readonly string[]): void {
  validateLockOptions(options, site, known);
  checkInteger((options as Partial<AcquireSemaphoreOptions>).permits, 'permits', site, 1, MAX_SEMAPHORE_PERMITS);
}
