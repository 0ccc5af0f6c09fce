import { DeadlineSweeper, type PendingCall } from '../../lib/rate-limit/deadlines';

/** A call that records when it expired; `expired` resolves then. */
function call(timeoutMs: number, log: string[], name: string): PendingCall & { expired: Promise<void> } {
  let done!: () => void;
  const expired = new Promise<void>((resolve) => (done = resolve));
  return {
    deadline: performance.now() + timeoutMs,
    expired,
    expire: () => {
      log.push(name);
      done();
    },
  };
}

describe('DeadlineSweeper (rate-limit time-outs)', () => {
  it('expires the calls still pending, in deadline order, and never a released one', async () => {
    const sweeper = new DeadlineSweeper();
    const log: string[] = [];
    const calls = ['a', 'b', 'c', 'd', 'e'].map((name) => call(20, log, name));
    for (const c of calls) sweeper.watch(20, c);
    // Released: the head, one in the middle, the tail (the three unlink cases).
    for (const i of [0, 2, 4]) sweeper.release(calls[i]);
    sweeper.release(calls[2]); // twice: ignored
    const late = call(40, log, 'late');
    sweeper.watch(40, late);
    await Promise.all([calls[1].expired, calls[3].expired, late.expired]);
    expect(log).toEqual(['b', 'd', 'late']);
    // A released call keeps no link to the others (nothing retained through it).
    expect(calls[0]).toMatchObject({ lane: undefined, previousPending: undefined, nextPending: undefined });
  });

  it('a lane emptied by releases is dropped when its timer fires, and a later call opens a new one', async () => {
    const sweeper = new DeadlineSweeper();
    const log: string[] = [];
    const first = call(5, log, 'first');
    sweeper.watch(5, first);
    sweeper.release(first);
    const lanes = (sweeper as unknown as { lanes: Map<number, unknown> }).lanes;
    expect(lanes.size).toBe(1);
    // The lane's timer fires at first's deadline and finds nothing to expire.
    const until = performance.now() + 2000;
    while (lanes.size > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(lanes.size).toBe(0);
    const second = call(5, log, 'second');
    sweeper.watch(5, second);
    await second.expired;
    expect(log).toEqual(['second']);
  });
});
