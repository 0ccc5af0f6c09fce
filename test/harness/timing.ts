/**
 * Latency bounds that hold on a loaded machine. A test that checks "decided within timeoutMs" must
 * not fail because the machine is busy (two other processes spinning on the two cores, say): the
 * library's own deadline timers then fire late too. So a bound is the contract plus how late this
 * process's timers ran while the call was in progress (Node's event-loop delay histogram), never a
 * fixed margin alone. A library that waited for the wrong deadline (commandTimeout instead of
 * timeoutMs, a whole TTL) is still caught: lateness does not grow by seconds unless the machine is
 * stalled for seconds.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Measures how late this process's timers run from now until `stop()`. */
export class Lateness {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });
  private stopped?: number;

  constructor() {
    this.histogram.enable();
  }

  /** Stops measuring (idempotent); returns the worst lateness seen, in ms. */
  stop(): number {
    if (this.stopped === undefined) {
      this.histogram.disable();
      // The histogram counts from the resolution: a timer due every 5 ms that ran on time reads 5 ms.
      this.stopped = Math.max(0, this.histogram.max / 1e6 - 5);
    }
    return this.stopped;
  }

  /** The worst lateness so far, in ms (keeps measuring). */
  get maxMs(): number {
    return this.stopped ?? Math.max(0, this.histogram.max / 1e6 - 5);
  }
}

/** A settled call: its value or error, how long it took and how late timers ran meanwhile (ms). */
export interface TimedCall<T> {
  value?: T;
  error?: unknown;
  ms: number;
  lateMs: number;
}

/** Runs `call`, timing it and measuring timer lateness meanwhile; never rejects. */
export async function timeCall<T>(call: () => Promise<T>): Promise<TimedCall<T>> {
  const lateness = new Lateness();
  const started = performance.now();
  try {
    const value = await call();
    return { value, ms: performance.now() - started, lateMs: lateness.stop() };
  } catch (error) {
    return { error, ms: performance.now() - started, lateMs: lateness.stop() };
  }
}

/**
 * The bound for a call that must end within `contractMs`: the contract, the lateness measured while
 * it ran, and `slackMs` for the work the call does besides waiting (a round trip, an HTTP exchange).
 */
export function boundFor(contractMs: number, lateMs: number, slackMs = 150): number {
  return contractMs + lateMs + slackMs;
}
