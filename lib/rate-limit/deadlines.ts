/** A call waiting for Redis, failed by {@link DeadlineSweeper} if it is still pending at `deadline`. */
export interface PendingCall {
  /** performance.now() time after which the call is failed. */
  readonly deadline: number;
  /** Called once, at the deadline, if the call was not released before; it must settle the call. */
  expire(): void;
  /** The sweeper's links (a call is in at most one lane at a time). */
  previousPending?: PendingCall;
  nextPending?: PendingCall;
  lane?: Lane;
}

/** The calls of one timeout value, oldest first: their deadlines increase in arrival order. */
export interface Lane {
  readonly timeoutMs: number;
  head?: PendingCall;
  tail?: PendingCall;
  timer?: NodeJS.Timeout;
}

/**
 * Time-outs for many concurrent calls with one timer per distinct timeout value instead of one
 * `setTimeout` + `clearTimeout` per call: calls of the same timeout expire in arrival order, so each
 * lane is a FIFO whose head is the next deadline. The FIFO is a doubly linked list threaded through
 * the calls themselves: a call that settles is unlinked at once ({@link release}), so nothing keeps a
 * settled call (and its command, promise and reply) alive until its deadline; the garbage collector
 * would otherwise move every call of the last `timeoutMs` to the old generation.
 */
export class DeadlineSweeper {
  private readonly lanes = new Map<number, Lane>();

  /** Starts watching `call` (whose deadline is now + `timeoutMs`). */
  watch(timeoutMs: number, call: PendingCall): void {
    let lane = this.lanes.get(timeoutMs);
    if (!lane) {
      lane = { timeoutMs };
      this.lanes.set(timeoutMs, lane);
    }
    call.lane = lane;
    call.previousPending = lane.tail;
    call.nextPending = undefined;
    if (lane.tail) lane.tail.nextPending = call;
    else lane.head = call;
    lane.tail = call;
    if (!lane.timer) this.arm(lane);
  }

  /** Stops watching `call` (it settled). A call not watched (or already released) is ignored. */
  release(call: PendingCall): void {
    const { lane } = call;
    if (!lane) return;
    const { previousPending: previous, nextPending: next } = call;
    if (previous) previous.nextPending = next;
    else lane.head = next;
    if (next) next.previousPending = previous;
    else lane.tail = previous;
    call.lane = call.previousPending = call.nextPending = undefined;
    // The lane's timer stays armed: clearing and re-arming it per call is what this class avoids.
  }

  private sweep(lane: Lane): void {
    lane.timer = undefined;
    const now = performance.now();
    while (lane.head && lane.head.deadline <= now) {
      const call = lane.head;
      this.release(call);
      call.expire();
    }
    this.arm(lane);
  }

  private arm(lane: Lane): void {
    if (!lane.head) {
      // Nothing pending: forget the lane (a later call opens a new one).
      if (this.lanes.get(lane.timeoutMs) === lane) this.lanes.delete(lane.timeoutMs);
      return;
    }
    const wait = Math.max(0, Math.ceil(lane.head.deadline - performance.now()));
    lane.timer = setTimeout(() => this.sweep(lane), wait);
    lane.timer.unref();
  }
}
