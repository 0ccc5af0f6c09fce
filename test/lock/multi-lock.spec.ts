/**
 * LockService.acquireAll / withLocks: several resources locked together, all or none, in a global
 * order (no deadlock whatever order callers give), across cluster slots; standalone and cluster.
 */
import { Lock, LockInputError, LockService, LockTimeoutError, MultiLock, RedisLuaModule } from 'nest-redis-lua';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describeTopologies, type TopologyContext } from '../harness/topologies';

async function lockApp(t: TopologyContext, prefix: string): Promise<LockService> {
  const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })]);
  return app.get(LockService);
}

/** How many of `keys` exist (one call per key: on a cluster they are in different slots). */
async function exists(t: TopologyContext, ...keys: string[]): Promise<number> {
  const counts = await Promise.all(keys.map((key) => t.client().exists(key)));
  return counts.reduce((sum, n) => sum + n, 0);
}

describeTopologies('LockService.acquireAll', (t) => {
  it("50 callers of acquireAll(['a', 'b']) and 50 of (['b', 'a']) over 2 instances: no deadlock, mutual exclusion on both, all complete", async () => {
    const prefix = t.prefix();
    const instances = [await lockApp(t, prefix), await lockApp(t, prefix)];
    if (t.topology === 'cluster') {
      const slots = await Promise.all(['a', 'b'].map((r) => t.client().cluster('KEYSLOT', instances[0].lockKey(r)) as Promise<number>));
      expect(slots[0]).not.toBe(slots[1]);
    }
    const running = { a: 0, b: 0 };
    let most = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        instances[i % 2].withLocks(
          i % 4 < 2 ? ['a', 'b'] : ['b', 'a'],
          async (both) => {
            expect(both.held).toBe(true);
            expect(both.resources).toEqual(['a', 'b']);
            running.a += 1;
            running.b += 1;
            most = Math.max(most, running.a, running.b);
            for (let turn = 0; turn < 3; turn++) await nextTurn();
            running.a -= 1;
            running.b -= 1;
            done += 1;
          },
          { waitMs: 120_000 },
        ),
      ),
    );
    expect(done).toBe(100);
    expect(most).toBe(1);
  });

  it('holds each resource as an ordinary lock; a plain acquire of one of them is excluded', async () => {
    const locks = await lockApp(t, t.prefix());
    const both = await locks.acquireAll(['from', 'to'], { ttlMs: 10_000 });
    expect(both).toBeInstanceOf(MultiLock);
    expect(both.locks.every((lock) => lock instanceof Lock)).toBe(true);
    expect(both.fences).toHaveLength(2);
    expect(both.resource).toBe('from, to');
    expect(await locks.tryAcquire('to')).toBeNull();
    expect(await t.client().get(locks.lockKey('from'))).toBe(both.locks[0].token);
    await both.extend(20_000);
    expect(await t.client().pttl(locks.lockKey('to'))).toBeGreaterThan(10_000);
    expect(await both.release()).toBe(true);
    expect(both.held).toBe(false);
    expect(await exists(t, locks.lockKey('from'), locks.lockKey('to'))).toBe(0);
  });

  it('all or none: when one resource stays held, those already taken are released and it rejects naming it', async () => {
    const locks = await lockApp(t, t.prefix());
    const other = await locks.acquire('z-held');
    const refused = await locks.acquireAll(['z-held', 'a-free', 'm-free'], { waitMs: 100 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(LockTimeoutError);
    expect((refused as LockTimeoutError).message).toMatch(/the lock on "z-held" is held by another owner/);
    // 'a-free' and 'm-free' were taken first (global order) and given back.
    expect(await exists(t, locks.lockKey('a-free'), locks.lockKey('m-free'))).toBe(0);
    await other.release();
    const aborted = new AbortController();
    const holder = await locks.acquire('y');
    const waiting = locks.acquireAll(['x', 'y'], { waitMs: 60_000, signal: aborted.signal }).catch((err: unknown) => err);
    await t.client().exists(locks.lockKey('x')); // a round trip: 'x' is taken by now or soon
    aborted.abort(new Error('caller gone'));
    expect(((await waiting) as Error).message).toBe('caller gone');
    expect(await t.client().exists(locks.lockKey('x'))).toBe(0);
    await holder.release();
  });

  it('a lost lock aborts the handle’s signal', async () => {
    const locks = await lockApp(t, t.prefix());
    const both = await locks.acquireAll(['p', 'q'], { ttlMs: 300, autoExtend: false });
    const reason = await new Promise<unknown>((resolve) => both.signal.addEventListener('abort', () => resolve(both.signal.reason)));
    expect((reason as Error).message).toMatch(/Lock on "p" lost|Lock on "q" lost/);
    expect(both.held).toBe(false);
    await both.release(); // true or false: the client counts a lease lost before Redis expires it
    expect(await exists(t, locks.lockKey('p'), locks.lockKey('q'))).toBe(0);
  });

  it('validates the resources before any Redis call', async () => {
    const locks = await lockApp(t, t.prefix());
    await expect(locks.acquireAll([])).rejects.toThrow(
      new LockInputError('nest-redis-lua: LockService.acquireAll: resources must be an array of 1 to 64 resources, got []', 'resources'),
    );
    await expect(locks.acquireAll(['a', 'b', 'a'])).rejects.toThrow(/resources must be distinct, got "a" twice/);
    await expect(locks.acquireAll(['a', ''])).rejects.toThrow(/resources\[1\] must be a non-empty string/);
    await expect(locks.acquireAll(Array.from({ length: 65 }, (_, i) => `r${i}`))).rejects.toThrow(LockInputError);
    await expect(locks.acquireAll(['a'], { mode: 'both' as 'read' })).rejects.toThrow(/option "mode"/);
  });
});
