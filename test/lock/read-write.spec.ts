/**
 * Read-write locks: `LockService.acquire(resource, { mode: 'read' })` shares a resource among
 * readers, a write (default) lock excludes everyone, a waiting writer keeps new readers out;
 * standalone and cluster.
 */
import { Lock, LockInputError, LockLostError, LockService, LockTimeoutError, RedisLuaModule, SemaphoreService } from 'nest-redis-lua';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { deferred, startHolder, waitFor } from './lock-test-utils';

async function lockApp(t: TopologyContext, prefix: string): Promise<LockService> {
  const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })]);
  return app.get(LockService);
}

describeTopologies('read-write locks', (t) => {
  it('20 readers run together; a writer waits for them and runs alone; readers arriving after it run after it', async () => {
    const prefix = t.prefix();
    const instances = [await lockApp(t, prefix), await lockApp(t, prefix)];
    const events: string[] = [];
    let readers = 0;
    let most = 0;
    let writing = false;
    const allIn = deferred();
    const leave = deferred();

    const first = Array.from({ length: 20 }, (_, i) =>
      instances[i % 2].withLock(
        'catalog',
        async () => {
          expect(writing).toBe(false);
          readers += 1;
          most = Math.max(most, readers);
          if (readers === 20) allIn.resolve();
          await leave.promise;
          readers -= 1;
        },
        { mode: 'read', waitMs: 60_000 },
      ),
    );
    await allIn.promise;
    expect(most).toBe(20);

    const writer = instances[0].withLock(
      'catalog',
      async (lock) => {
        expect(readers).toBe(0);
        writing = true;
        events.push('writer');
        for (let turn = 0; turn < 20; turn++) await nextTurn();
        // Still alone after many turns: no late reader got in.
        expect(readers).toBe(0);
        events.push('writer done');
        writing = false;
        return lock.fence;
      },
      { waitMs: 60_000 },
    );
    // The writer is counted as waiting once its second attempt failed: from then on no reader gets in.
    const writersKey = `${instances[0].lockKey('catalog')}:writers`;
    await waitFor(async () => (await t.client().exists(writersKey)) === 1, 'the writer to wait');
    expect(await instances[1].tryAcquire('catalog', { mode: 'read' })).toBeNull();

    const late = Array.from({ length: 5 }, (_, i) =>
      instances[(i + 1) % 2].withLock(
        'catalog',
        async () => {
          expect(writing).toBe(false);
          events.push('late reader');
        },
        { mode: 'read', waitMs: 60_000 },
      ),
    );
    for (let turn = 0; turn < 10; turn++) await nextTurn();
    expect(events).toEqual([]);

    leave.resolve();
    await Promise.all(first);
    const fence = await writer;
    await Promise.all(late);
    expect(events).toEqual(['writer', 'writer done', ...Array<string>(5).fill('late reader')]);
    expect(fence).toBeGreaterThan(0);
    // Nothing left behind but the fence key.
    expect(await t.client().exists(writersKey, `${instances[0].lockKey('catalog')}:readers`, instances[0].lockKey('catalog'))).toBe(0); // one slot
  });

  it('tryAcquire: readers share, a writer is refused while a reader holds, readers while a writer holds; fences increase across modes', async () => {
    const locks = await lockApp(t, t.prefix());
    const r1 = await locks.tryAcquire('doc', { mode: 'read' });
    const r2 = await locks.tryAcquire('doc', { mode: 'read' });
    expect(r1).toBeInstanceOf(Lock);
    expect(r2).toBeInstanceOf(Lock);
    expect(r2!.fence).toBeGreaterThan(r1!.fence);
    expect(await locks.tryAcquire('doc')).toBeNull();
    expect(await locks.tryAcquire('doc', { mode: 'write' })).toBeNull();
    expect(await r1!.release()).toBe(true);
    expect(await locks.tryAcquire('doc')).toBeNull(); // r2 still reads
    // By token, with the mode it was taken in; the write mode does not know a reader's token.
    expect(await locks.release('doc', r2!.token)).toBe(false);
    expect(await locks.extend('doc', r2!.token, 60_000, { mode: 'read' })).toBe(true);
    expect(await locks.release('doc', r2!.token, { mode: 'read' })).toBe(true);
    expect(r2!.held).toBe(true); // the handle does not know its token was released elsewhere

    const writer = await locks.tryAcquire('doc');
    expect(writer).toBeInstanceOf(Lock);
    expect(writer!.fence).toBeGreaterThan(r2!.fence);
    expect(await locks.tryAcquire('doc', { mode: 'read' })).toBeNull();
    await writer!.release();
    const reader = await locks.tryAcquire('doc', { mode: 'read' });
    expect(reader!.fence).toBeGreaterThan(writer!.fence);
    await reader!.release();
    await r2!.release().catch(() => undefined);
  });

  it('a reader that vanished stops excluding writers when its TTL runs out', async () => {
    const locks = await lockApp(t, t.prefix());
    const forgotten = await locks.acquire('report', { mode: 'read', ttlMs: 300, autoExtend: false });
    const writer = await locks.acquire('report', { waitMs: 60_000 });
    expect(writer.fence).toBeGreaterThan(forgotten.fence);
    expect(forgotten.held).toBe(false);
    expect(forgotten.signal.reason).toBeInstanceOf(LockLostError);
    expect(await forgotten.release()).toBe(false);
    await writer.release();
  });

  // Without the notice passed on, the other readers would wait for the writer's TTL (300 s, past
  // the test's 60 s timeout); with it they are all in within milliseconds. No time is asserted.
  it("a writer's release wakes every reader waiting in one instance, not only the first", async () => {
    const locks = await lockApp(t, t.prefix());
    const writer = await locks.acquire('shelf', { ttlMs: 300_000 });
    const readers = Array.from({ length: 5 }, () => locks.acquire('shelf', { mode: 'read', waitMs: 300_000 }));
    const redis = t.client();
    await waitFor(async () => (await redis.get(`${locks.lockKey('shelf')}:waiters`)) === '5', 'the 5 readers counted as waiters');
    await writer.release();
    const held = await Promise.all(readers);
    expect(held.every((reader) => reader.held)).toBe(true);
    await Promise.all(held.map((reader) => reader.release()));
  }, 60_000);

  it('a reader process killed with -9 stops excluding writers once its TTL runs out', async () => {
    const prefix = t.prefix();
    const locks = await lockApp(t, prefix);
    const holder = await startHolder(t.connection(), prefix, 1_000, 'read');
    try {
      // Read-held and renewed by the child: a writer is refused, another reader shares it.
      expect(await locks.tryAcquire('held-by-child')).toBeNull();
      const reader = await locks.tryAcquire('held-by-child', { mode: 'read' });
      expect(reader).toBeInstanceOf(Lock);
      await reader!.release();
      expect(await holder.kill()).toBe('SIGKILL');
      // No release ever comes: the writer gets the lock once the reader's 1 s TTL has run out.
      const writer = await locks.acquire('held-by-child', { waitMs: 60_000 });
      expect(writer.fence).toBeGreaterThan(holder.fence);
      await writer.release();
    } finally {
      await holder.kill();
    }
  });

  it('a reader is renewed by the watchdog while it holds, and a release wakes the writer of another instance', async () => {
    const prefix = t.prefix();
    const [a, b] = [await lockApp(t, prefix), await lockApp(t, prefix)];
    const reader = await a.acquire('ledger', { mode: 'read', ttlMs: 600_000 });
    // Without the release notice the writer would sleep until the reader's 10-minute TTL.
    const writing = b.acquire('ledger', { waitMs: 600_000 });
    await waitFor(async () => (await t.client().exists(`${a.lockKey('ledger')}:writers`)) === 1, 'the writer to wait');
    await reader.release();
    const writer = await writing;
    expect(writer.held).toBe(true);
    await writer.release();
  });

  it('a writer that gives up lets the readers it kept out in', async () => {
    const locks = await lockApp(t, t.prefix());
    const reader = await locks.acquire('shelf', { mode: 'read', ttlMs: 600_000 });
    const giving = locks.acquire('shelf', { waitMs: 300 }).catch((err: unknown) => err);
    await waitFor(async () => (await t.client().exists(`${locks.lockKey('shelf')}:writers`)) === 1, 'the writer to wait');
    const late = locks.acquire('shelf', { mode: 'read', waitMs: 600_000 });
    expect(await giving).toBeInstanceOf(LockTimeoutError);
    const second = await late;
    expect(second.held).toBe(true);
    await Promise.all([second.release(), reader.release()]);
  });

  it('validates mode', async () => {
    const locks = await lockApp(t, t.prefix());
    await expect(locks.acquire('x', { mode: 'shared' as 'read' })).rejects.toThrow(
      new LockInputError('nest-redis-lua: LockService.acquire: option "mode" must be one of read, write, got "shared"', 'mode'),
    );
    await expect(locks.release('x', 'token', { mode: 'exclusive' as 'write' })).rejects.toThrow(LockInputError);
    const semaphores = (await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })])).get(SemaphoreService);
    await expect(semaphores.acquire('x', { permits: 2, mode: 'read' } as never)).rejects.toThrow(/unknown option "mode"/);
  });
});
