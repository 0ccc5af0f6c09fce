import type { RateLimitModuleOptions } from 'nest-redis-lua';

/**
 * Rate-limit options for a test that counts decisions. On a loaded machine Redis can take longer
 * than the default 250 ms `timeoutMs` to answer, and the limiter then fails open: a request admitted
 * without a decision, which an exact count must never see. With these options a slow answer is
 * waited for, and a call that fails anyway is refused (503), never admitted.
 */
export const DECIDED: RateLimitModuleOptions = { failMode: 'closed', timeoutMs: 60_000 };
