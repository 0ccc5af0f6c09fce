/** A call waiting for Redis, failed by {@link DeadlineSweeper} if it is still pending at `deadline`. @internal */
export interface PendingCall {
  /** performance.now() time after which the call is failed. */
  readonly deadline: number;
  /** Set once the call settled: the sweeper then skips it. */
  readonly settled: boolean;
  /** Called once, at the deadline, if the call has not settled; it must settle the call. */
  expire(): void;
}

/** The calls of one timeout value: their deadlines increase in arrival order. */
interface Lane {
  calls: PendingCall[];
  head: number;
  timer?: NodeJS.Timeout;
}

/**
 * Time-outs for many concurrent calls with one timer per distinct timeout value instead of one
 * `setTimeout` + `clearTimeout` per call: calls of the same timeout expire in arrival order, so
 * each lane is a FIFO whose head is the next deadline. A call that settles is only marked; the
 * sweep drops it when it reaches it. @internal
 */
export class DeadlineSweeper {
  private readonly lanes = new Map<number, Lane>();

  /** Starts watching `call` (whose deadline is now + `timeoutMs`). */
  watch(timeoutMs: number, call: PendingCall): void {
    let lane = this.lanes.get(timeoutMs);
    if (!lane) {
      lane = { calls: [], head: 0 };
      this.lanes.set(timeoutMs, lane);
    }
    lane.calls.push(call);
    if (!lane.timer) this.arm(timeoutMs, lane);
  }

  private sweep(timeoutMs: number, lane: Lane): void {
    lane.timer = undefined;
    const now = performance.now();
    const { calls } = lane;
    while (lane.head < calls.length) {
      const call = calls[lane.head];
      if (!call.settled) {
        if (call.deadline > now) break;
        call.expire();
      }
      calls[lane.head++] = undefined as unknown as PendingCall;
    }
    this.arm(timeoutMs, lane);
  }

  private arm(timeoutMs: number, lane: Lane): void {
    const { calls } = lane;
    while (lane.head < calls.length && calls[lane.head].settled) calls[lane.head++] = undefined as unknown as PendingCall;
    if (lane.head >= calls.length) {
      // Nothing pending: forget the lane (a later call opens a new one).
      this.lanes.delete(timeoutMs);
      return;
    }
    if (lane.head > 1024 && lane.head * 2 > calls.length) {
      lane.calls = calls.slice(lane.head);
      lane.head = 0;
    }
    const wait = Math.max(0, Math.ceil(lane.calls[lane.head].deadline - performance.now()));
    lane.timer = setTimeout(() => this.sweep(timeoutMs, lane), wait);
    lane.timer.unref();
  }
}
