import type { Cluster, Redis } from 'ioredis';
import { isCluster } from '../module/redis-connection';

/** How often the offset is measured again (clocks drift, NTP steps them, a failover brings another server). */
const REFRESH_MS = 60_000;
/** TIME round trips per server and measurement: the tightest one bounds the offset. */
const SAMPLES = 3;
/** What a call sends before the first measurement: a deadline no script call reaches (no check). */
const NO_DEADLINE = '9007199254740991';

/**
 * The rate-limit scripts' deadline (ARGV[1]): the time, on the Redis servers' clocks (TIME, in ms),
 * after which a call's caller has been answered by its fail mode, so the script must not record
 * its hit (a server frozen by `DEBUG SLEEP` or a long script runs the calls it buffered when it
 * resumes, long after their callers got a 503).
 *
 * The client learns how far the servers' clocks are ahead of its own: for each master, the smallest
 * `serverTime - sentAt` over a few TIME round trips is an upper bound of the offset (TIME was read
 * after the call was sent), tight within that round trip; across masters the largest one is used.
 * So the deadline a script checks is never earlier than the caller's: a script never refuses a call
 * its caller still waits for, and a call that runs later than (caller's deadline + TIME round trip)
 * records nothing. Measured at boot (before the app serves), on every connect ('ready') and every
 * minute; until the first measurement (`lazyConnect` before Redis answered) calls carry no deadline.
 */
export class ServerClock {
  private offsetMs: number | undefined;
  private readonly timer: NodeJS.Timeout;
  private measuring?: Promise<void>;
  private lastDeadline = 0;
  private lastText = '';

  constructor(private readonly client: Redis | Cluster) {
    client.on('ready', this.measure);
    if (client.status === 'ready') void this.measure();
    this.timer = setInterval(this.measure, REFRESH_MS).unref();
  }

  /**
   * The deadline `timeoutMs` from now, on the servers' clocks, as the scripts take it. The string of
   * the last deadline is reused while it is the same number (calls of one millisecond with one
   * `timeoutMs`): formatting a 13-digit number on every call showed in the client CPU profile.
   */
  deadline(timeoutMs: number): string {
    const { offsetMs } = this;
    if (offsetMs === undefined) return NO_DEADLINE;
    const deadline = Math.ceil(Date.now() + timeoutMs + offsetMs);
    if (deadline !== this.lastDeadline) {
      this.lastDeadline = deadline;
      this.lastText = String(deadline);
    }
    return this.lastText;
  }

  /** Stops measuring (the module is closing). */
  stop(): void {
    clearInterval(this.timer);
    this.client.off('ready', this.measure);
  }

  /**
   * Measures the offset (again); keeps the last one if a server does not answer. Never rejects: a
   * connection failure is the engine's to report. Resolves when the measurement in flight ends.
   */
  readonly measure = (): Promise<void> => {
    this.measuring ??= Promise.all((isCluster(this.client) ? this.client.nodes('master') : [this.client]).map(offsetBound))
      .then((bounds) => {
        if (bounds.length > 0) this.offsetMs = Math.max(...bounds);
      })
      .catch(() => undefined)
      .finally(() => {
        this.measuring = undefined;
      });
    return this.measuring;
  };
}

/** An upper bound of `server TIME - Date.now()` for one server, in ms. */
async function offsetBound(node: Redis): Promise<number> {
  let bound = Infinity;
  for (let i = 0; i < SAMPLES; i++) {
    const sentAt = Date.now();
    const [seconds, micros] = await node.time();
    bound = Math.min(bound, Number(seconds) * 1000 + Number(micros) / 1000 - sentAt);
  }
  return bound;
}
