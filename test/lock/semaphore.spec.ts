/**
 * SemaphoreService: at most `permits` holders of a name at once across instances, permits that are
 * fenced `Lock`s, event-driven waiting, reclaimed permits of vanished holders; standalone and cluster.
 */
import {
  Lock,
  LockInputError,
  LockLostError,
  LockTimeoutError,
  RedisLuaModule,
  SemaphoreService,
  SemaphoreTimeoutError,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { startHolder } from './lock-test-utils';

async function semaphoreApp(t: TopologyContext, prefix: string, lock?: RedisLuaModuleOptions['lock']): Promise<SemaphoreService> {
  const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix, lock })]);
  return app.get(SemaphoreService);
}

describeTopologies('SemaphoreService', (t) => {
  it('200 concurrent withPermit bodies over 2 instances, 4 permits: never more than 4 at once, all complete', async () => {
    const prefix = t.prefix();
    const instances = [await semaphoreApp(t, prefix), await semaphoreApp(t, prefix)];
    let running = 0;
    let most = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        instances[i % 2].withPermit('gpu-jobs', { permits: 4, waitMs: 120_000 }, async (permit) => {
          expect(permit.held).toBe(true);
          running += 1;
          most = Math.max(most, running);
          for (let turn = 0; turn < 5; turn++) await nextTurn();
          running -= 1;
          done += 1;
        }),
      ),
    );
    expect(done).toBe(200);
    expect(most).toBeLessThanOrEqual(4);
    expect(most).toBeGreaterThan(1);
    expect(running).toBe(0);
  });

  it('tryAcquire: permits are fenced locks, one more holder is refused, a release frees a place', async () => {
    const semaphores = await semaphoreApp(t, t.prefix());
    const permits = await Promise.all([1, 2, 3].map(() => semaphores.tryAcquire('exports', { permits: 3 })));
    for (const permit of permits) expect(permit).toBeInstanceOf(Lock);
    const fences = permits.map((permit) => permit!.fence);
    expect(new Set(fences).size).toBe(3);
    expect(await semaphores.tryAcquire('exports', { permits: 3 })).toBeNull();
    // Another name has its own permits.
    expect(await semaphores.tryAcquire('imports', { permits: 1 })).toBeInstanceOf(Lock);

    expect(await permits[0]!.release()).toBe(true);
    const next = await semaphores.tryAcquire('exports', { permits: 3 });
    expect(next).toBeInstanceOf(Lock);
    expect(next!.fence).toBeGreaterThan(Math.max(...fences));
    expect(await semaphores.release('exports', permits[0]!.token)).toBe(false); // given back already
  });

  it('a release wakes a waiter of another instance (no wait for the holder TTL)', async () => {
    const prefix = t.prefix();
    const [a, b] = [await semaphoreApp(t, prefix), await semaphoreApp(t, prefix)];
    const holder = await a.acquire('partner-api', { permits: 1, ttlMs: 600_000 });
    let acquired = false;
    // Without the release notice this waiter would sleep until the holder's 10-minute TTL.
    const waiting = b.acquire('partner-api', { permits: 1, waitMs: 600_000 }).then((permit) => {
      acquired = true;
      return permit;
    });
    await nextTurn();
    expect(acquired).toBe(false);
    await holder.release();
    const permit = await waiting;
    expect(permit.fence).toBeGreaterThan(holder.fence);
    await permit.release();
  });

  it('the permit of a holder that vanished comes back when its TTL runs out', async () => {
    const semaphores = await semaphoreApp(t, t.prefix());
    const forgotten = await semaphores.acquire('nightly', { permits: 1, ttlMs: 300, autoExtend: false });
    // Never released: the next caller waits for its expiry (woken by the holder's TTL, not a notice).
    const next = await semaphores.acquire('nightly', { permits: 1, waitMs: 60_000 });
    expect(next.fence).toBeGreaterThan(forgotten.fence);
    expect(forgotten.held).toBe(false);
    expect(forgotten.signal.reason).toBeInstanceOf(LockLostError);
    // Its late release gives back nothing (its place was taken).
    expect(await semaphores.release('nightly', forgotten.token)).toBe(false);
    await expect(forgotten.extend(1_000)).rejects.toThrow(LockLostError);
    await next.release();
  });

  it('a holder process killed with -9 frees its permit within its TTL', async () => {
    const prefix = t.prefix();
    const semaphores = await semaphoreApp(t, prefix);
    const holder = await startHolder(t.connection(), prefix, 1_000);
    try {
      // Held and renewed by the child: nobody else gets it.
      expect(await semaphores.tryAcquire('held-by-child', { permits: 1 })).toBeNull();
      expect(await holder.kill()).toBe('SIGKILL');
      // No release ever comes: the waiter gets the permit once its 1 s TTL has run out.
      const permit = await semaphores.acquire('held-by-child', { permits: 1, waitMs: 60_000 });
      expect(permit.fence).toBeGreaterThan(holder.fence);
      await permit.release();
    } finally {
      await holder.kill();
    }
  });

  it('extend renews a held permit; every permit held past waitMs is a SemaphoreTimeoutError', async () => {
    const semaphores = await semaphoreApp(t, t.prefix());
    const permit = await semaphores.acquire('reports', { permits: 1, ttlMs: 5_000, autoExtend: false });
    expect(await semaphores.extend('reports', permit.token, 60_000)).toBe(true);
    const refused = await semaphores.acquire('reports', { permits: 1, waitMs: 50 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SemaphoreTimeoutError);
    expect(refused).toBeInstanceOf(LockTimeoutError);
    expect((refused as SemaphoreTimeoutError).message).toBe(
      'nest-redis-lua: SemaphoreService.acquire: all 1 permits of "reports" are held (waited 50 ms)',
    );
    expect((refused as SemaphoreTimeoutError).retryAfterMs).toBeGreaterThan(50_000);
    expect(await semaphores.acquire('reports', { permits: 1, waitMs: 0 }).catch((err: unknown) => err)).toBeInstanceOf(
      SemaphoreTimeoutError,
    );
    await permit.release();
    expect(await semaphores.extend('reports', permit.token, 1_000)).toBe(false);
  });

  it('refuses bad input before any Redis call', async () => {
    const semaphores = await semaphoreApp(t, t.prefix());
    const refusals: Array<[() => Promise<unknown>, string]> = [
      [() => semaphores.acquire('', { permits: 1 }), 'SemaphoreService.acquire: name must be a non-empty string'],
      [
        () => semaphores.acquire('s', {} as { permits: number }),
        'SemaphoreService.acquire: option "permits" must be an integer between 1 and 1000000',
      ],
      [
        () => semaphores.tryAcquire('s', { permits: 0 }),
        'SemaphoreService.tryAcquire: option "permits" must be an integer between 1 and 1000000, got 0',
      ],
      [() => semaphores.acquire('s', { permits: 1.5 }), 'option "permits" must be an integer'],
      [() => semaphores.acquire('s', { permits: 1, ttlMs: 0 }), 'ttlMs'],
      [() => semaphores.tryAcquire('s', { permits: 1, waitMs: 5 } as never), 'SemaphoreService.tryAcquire: unknown option "waitMs"'],
      [() => semaphores.withPermit('s', { permits: 2, signal: 'x' } as never, () => 1), 'option "signal" must be an AbortSignal'],
      [() => semaphores.release('s', ''), 'SemaphoreService.release: token must be a non-empty string'],
      [() => semaphores.extend('s', 'token', -1), 'SemaphoreService.extend: ttlMs'],
    ];
    for (const [call, text] of refusals) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockInputError);
      expect((err as Error).message).toContain(text);
    }
  });
});
