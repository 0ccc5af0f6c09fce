/**
 * The loader lock is a short lease, renewed every third of it while the loader runs (until
 * `lockTtlMs` has passed since it was taken): a loader that crashed, or whose lock-taking reply was
 * lost, blocks the other callers for at most this long, not for `lockTtlMs`.
 */
export const LOADER_LEASE_MS = 1_000;

/** The lease a loader lock is taken and renewed with: {@link LOADER_LEASE_MS}, or `lockTtlMs` if shorter. */
export function leaseMs(lockTtlMs: number): number {
  return Math.min(lockTtlMs, LOADER_LEASE_MS);
}

/**
 * Keeps a loader lock while its loader runs: renews it every third of its lease until `lockTtlMs`
 * has passed since it was taken (then it expires within one lease and another caller may load), or
 * until the lock is found gone (invalidated, taken). A failed renewal is retried at the next tick.
 * Its timers never keep the process alive; `stop` ends it.
 */
export class LoaderLease {
  private readonly lease: number;
  private readonly until: number;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    lockTtlMs: number,
    /** Renews the lock for `ms` if this caller still holds it: 1 renewed, 0 gone. */
    private readonly renew: (ms: number) => Promise<0 | 1>,
    private readonly onError: (err: Error) => void,
  ) {
    this.lease = leaseMs(lockTtlMs);
    this.until = Date.now() + lockTtlMs;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped || Date.now() + this.lease >= this.until) return;
    this.timer = setTimeout(() => this.tick(), Math.max(1, Math.floor(this.lease / 3)));
    this.timer.unref();
  }

  private tick(): void {
    const ms = Math.min(this.lease, this.until - Date.now());
    if (this.stopped || ms <= 0) return;
    this.renew(ms).then(
      (held) => {
        if (held === 1) this.schedule();
      },
      (err: Error) => {
        this.onError(err);
        this.schedule();
      },
    );
  }
}
