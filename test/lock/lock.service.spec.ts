import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import {
  Lock,
  LockLostError,
  LockService,
  LockTimeoutError,
  REDIS_LUA_CLIENT,
  RedisLuaModule,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import type { Cluster, Redis } from 'ioredis';
import { bootError as bootErrorOf } from '../harness/boot';
import { harnessAddresses } from '../harness/harness-env';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { boundFor, timeCall } from '../harness/timing';
import { deferred, subscribers, waitFor } from './lock-test-utils';

async function lockApp(t: TopologyContext, prefix: string, lock?: RedisLuaModuleOptions['lock']): Promise<LockService> {
  const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix, lock })]);
  return app.get(LockService);
}

describeTopologies('LockService', (t) => {
  let redis: Redis | Cluster;
  beforeAll(() => {
    redis = t.client();
  });

  it('acquires a lock with a random token, a fence and an expiry, and releases it', async () => {
    const locks = await lockApp(t, t.prefix());
    const before = Date.now();
    const lock = await locks.acquire('order:1', { ttlMs: 10_000 });
    expect(lock).toBeInstanceOf(Lock);
    expect(lock.resource).toBe('order:1');
    expect(lock.token).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(Number.isSafeInteger(lock.fence)).toBe(true);
    expect(lock.expiresAt).toBeGreaterThanOrEqual(before + 10_000);
    expect(lock.expiresAt).toBeLessThanOrEqual(Date.now() + 10_000);
    expect(lock.signal.aborted).toBe(false);
    expect(await redis.get(locks.lockKey('order:1'))).toBe(lock.token);
    const pttl = await redis.pttl(locks.lockKey('order:1'));
    // At most the time since the acquire was sent has run off the TTL (Redis time runs no faster).
    expect(pttl).toBeGreaterThanOrEqual(10_000 - (Date.now() - before) - 1);
    expect(pttl).toBeLessThanOrEqual(10_000);

    expect(await locks.tryAcquire('order:1')).toBeNull();
    expect(await lock.release()).toBe(true);
    expect(lock.held).toBe(false);
    expect(await redis.exists(locks.lockKey('order:1'))).toBe(0);
    expect(await lock.release()).toBe(false);
    const again = await locks.tryAcquire('order:1');
    expect(again?.token).not.toBe(lock.token);
    await again?.release();
  });

  it("waitMs 0 under contention: LockTimeoutError carrying the holder's remaining TTL", async () => {
    const locks = await lockApp(t, t.prefix());
    const before = performance.now();
    const lock = await locks.acquire('r', { ttlMs: 8_000 });
    const err = await locks.acquire('r', { waitMs: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect((err as LockTimeoutError).resource).toBe('r');
    expect((err as LockTimeoutError).retryAfterMs).toBeGreaterThanOrEqual(8_000 - (performance.now() - before) - 1);
    expect((err as LockTimeoutError).retryAfterMs).toBeLessThanOrEqual(8_000);
    await lock.release();
  });

  it('release with a wrong token deletes nothing; extend with a wrong token changes nothing', async () => {
    const locks = await lockApp(t, t.prefix());
    const lock = await locks.acquire('acct:7', { ttlMs: 5_000, autoExtend: false });
    expect(await locks.release('acct:7', 'not-the-token')).toBe(false);
    expect(await locks.release('acct:7', `${lock.token}x`)).toBe(false);
    expect(await redis.get(locks.lockKey('acct:7'))).toBe(lock.token);
    expect(await locks.extend('acct:7', 'not-the-token', 60_000)).toBe(false);
    expect(await redis.pttl(locks.lockKey('acct:7'))).toBeLessThanOrEqual(5_000);
    expect(await locks.release('acct:7', lock.token)).toBe(true);
    expect(await redis.exists(locks.lockKey('acct:7'))).toBe(0);
  });

  it('the fence strictly increases across 100 acquisitions, also after the fence key is gone', async () => {
    const locks = await lockApp(t, t.prefix());
    const fences: number[] = [];
    for (let i = 0; i < 100; i++) {
      const lock = await locks.acquire('fenced', { ttlMs: 5_000 });
      fences.push(lock.fence);
      await lock.release();
      // Halfway, lose the fence key (as after a long idle period): the fence still goes up.
      if (i === 49) await redis.del(`${locks.lockKey('fenced')}:fence`);
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]);
    // Acquisitions in the same microsecond still get distinct, increasing fences.
    const together = await Promise.all(['a', 'b', 'c'].map(() => locks.tryAcquire('fenced')));
    const got = together.filter((l): l is Lock => l !== null);
    expect(got).toHaveLength(1);
    expect(got[0].fence).toBeGreaterThan(fences[99]);
    await got[0].release();
  });

  it('hands off to a waiter in another app on the release (no polling, no waiting for the TTL)', async () => {
    const prefix = t.prefix();
    const holderSide = await lockApp(t, prefix);
    const waiterSide = await lockApp(t, prefix);
    const masters = await t.masters();
    const holder = await holderSide.acquire('handoff', { ttlMs: 20_000 });
    const waiting = waiterSide.acquire('handoff', { ttlMs: 5_000, waitMs: 15_000 });
    let acquiredAt = 0;
    void waiting.then(
      () => (acquiredAt = performance.now()),
      () => undefined,
    );
    // The waiter is subscribed once the server counts it.
    await waitFor(async () => (await subscribers(masters, holderSide.channel('handoff'))) >= 1, 'the waiter to subscribe');
    const releasedAt = performance.now();
    expect(await holder.release()).toBe(true);
    const lock = await waiting;
    const handOffMs = acquiredAt - releasedAt;
    // Informative only (speed is measured in bench/): that the waiter got the lock at all shows the
    // release woke it, since the holder's TTL (20 s) outlasts the waiter's waitMs (15 s).
    console.log(`[${t.topology}] lock hand-off: waiter acquired ${handOffMs.toFixed(1)} ms after release began (holder TTL 20 s)`);
    expect(lock.fence).toBeGreaterThan(holder.fence);
    await lock.release();
    // The waiter unsubscribed.
    await waitFor(async () => (await subscribers(masters, holderSide.channel('handoff'))) === 0, 'the waiter to unsubscribe');
  });

  it('an uncontended release publishes nothing; a counted waiter is woken, and uncounted in every outcome', async () => {
    const prefix = t.prefix();
    const holderSide = await lockApp(t, prefix);
    const waiterSide = await lockApp(t, prefix);
    const channel = holderSide.channel('quiet');
    const lockKey = holderSide.lockKey('quiet');
    const waitersKey = `${lockKey}:waiters`;
    // A subscriber of its own on the release channel records every message.
    const listener = t.client();
    const messages: string[] = [];
    let onMessage = (): void => undefined;
    listener.on('message', (_channel: string, message: string) => {
      messages.push(message);
      onMessage();
    });
    await listener.subscribe(channel);
    const nextMessage = (): Promise<void> => new Promise((resolve) => (onMessage = resolve));
    // A marker published from a script on the lock key's node (so after every earlier release
    // notice of that node, in order): once it arrives, any notice published before it has arrived.
    const marker = async (): Promise<void> => {
      const arrived = nextMessage();
      await redis.eval("return redis.call('PUBLISH', ARGV[1], 'marker')", 1, lockKey, channel);
      await arrived;
    };

    // Uncontended: 20 acquire+release pairs and a release of withLock publish nothing.
    for (let i = 0; i < 20; i++) {
      const lock = await holderSide.acquire('quiet', { ttlMs: 5_000 });
      expect(await lock.release()).toBe(true);
    }
    await holderSide.withLock('quiet', () => undefined);
    await marker();
    expect(messages).toEqual(['marker']);
    expect(await redis.exists(waitersKey)).toBe(0);

    // Contended: the waiter counts itself (with a TTL bounding a crashed waiter), the release wakes it.
    const holder = await holderSide.acquire('quiet', { ttlMs: 20_000 });
    const waiting = waiterSide.acquire('quiet', { ttlMs: 5_000, waitMs: 15_000 });
    let acquiredAt = 0;
    void waiting.then(
      () => (acquiredAt = performance.now()),
      () => undefined,
    );
    await waitFor(async () => (await redis.get(waitersKey)) === '1', 'the waiter to be counted');
    const pttl = await redis.pttl(waitersKey);
    expect(pttl).toBeGreaterThan(15_000);
    expect(pttl).toBeLessThanOrEqual(20_000);
    const notice = nextMessage();
    const releasedAt = performance.now();
    expect(await holder.release()).toBe(true);
    const lock = await waiting;
    expect(acquiredAt - releasedAt).toBeLessThan(100);
    await notice;
    expect(messages).toEqual(['marker', 'released']);
    // The waiter uncounted itself in the script that gave it the lock: its release is quiet again.
    expect(await redis.exists(waitersKey)).toBe(0);
    expect(await lock.release()).toBe(true);
    await marker();
    expect(messages).toEqual(['marker', 'released', 'marker']);

    // A waiter that gives up after waitMs, and one whose signal aborts, uncount themselves.
    const again = await holderSide.acquire('quiet', { ttlMs: 20_000 });
    await expect(waiterSide.acquire('quiet', { waitMs: 200 })).rejects.toBeInstanceOf(LockTimeoutError);
    await waitFor(async () => (await redis.exists(waitersKey)) === 0, 'the timed-out waiter to uncount itself');
    const controller = new AbortController();
    const aborted = waiterSide.acquire('quiet', { waitMs: 10_000, signal: controller.signal });
    await waitFor(async () => (await redis.get(waitersKey)) === '1', 'the second waiter to be counted');
    controller.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    await waitFor(async () => (await redis.exists(waitersKey)) === 0, 'the aborted waiter to uncount itself');
    expect(await again.release()).toBe(true);
    await marker();
    expect(messages).toEqual(['marker', 'released', 'marker', 'marker']);
  });

  it('many waiters are counted exactly; each release wakes one, and the count returns to zero', async () => {
    const prefix = t.prefix();
    const apps = await Promise.all([lockApp(t, prefix), lockApp(t, prefix), lockApp(t, prefix)]);
    const waitersKey = `${apps[0].lockKey('crowd')}:waiters`;
    const holder = await apps[0].acquire('crowd', { ttlMs: 20_000 });
    const n = 12;
    const order: number[] = [];
    const waiting = Array.from({ length: n }, (_, i) =>
      apps[i % 3].withLock('crowd', () => void order.push(i), { ttlMs: 20_000, waitMs: 15_000 }),
    );
    await waitFor(async () => (await redis.get(waitersKey)) === String(n), `${n} waiters to be counted`);
    expect(await holder.release()).toBe(true);
    await Promise.all(waiting);
    // Each waiter took the lock once, woken by releases (not by the 20 s TTL).
    expect(order.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(await redis.exists(waitersKey)).toBe(0);
  });

  it('a waiter whose holder dies retries when the TTL runs out', async () => {
    const locks = await lockApp(t, t.prefix());
    const before = performance.now();
    const crashed = await locks.acquire('orphan', { ttlMs: 400, autoExtend: false });
    const started = performance.now();
    const call = await timeCall(() => locks.acquire('orphan', { ttlMs: 5_000, waitMs: 5_000 }));
    if (call.error) throw call.error;
    const lock = call.value!;
    // Not before the orphan's TTL ran out; soon after it (a retry at its TTL, plus jitter), not at waitMs.
    expect(call.ms).toBeGreaterThanOrEqual(400 - (started - before) - 1);
    expect(call.ms).toBeLessThan(boundFor(400, call.lateMs, 1_000));
    expect(lock.fence).toBeGreaterThan(crashed.fence);
    expect(crashed.signal.aborted).toBe(true);
    expect(await crashed.release()).toBe(false);
    await lock.release();
  });

  it('gives up after waitMs, and an aborted signal stops waiting without taking the lock', async () => {
    const locks = await lockApp(t, t.prefix());
    const holder = await locks.acquire('busy', { ttlMs: 10_000 });
    const started = performance.now();
    const err = await locks.acquire('busy', { waitMs: 250 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(245);

    const controller = new AbortController();
    const waiting = locks.acquire('busy', { waitMs: 10_000, signal: controller.signal });
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(await holder.release()).toBe(true);
    expect(await redis.exists(locks.lockKey('busy'))).toBe(0);
  });

  it('the watchdog keeps a lock held for 3× ttlMs and nobody else gets in', async () => {
    const prefix = t.prefix();
    const owner = await lockApp(t, prefix);
    const rival = await lockApp(t, prefix);
    const lock = await owner.acquire('long', { ttlMs: 1_000 });
    const firstExpiry = lock.expiresAt;
    const until = performance.now() + 3_000;
    let attempts = 0;
    while (performance.now() < until) {
      attempts += 1;
      expect(await rival.tryAcquire('long')).toBeNull();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(attempts).toBeGreaterThan(5);
    expect(lock.signal.aborted).toBe(false);
    expect(lock.expiresAt).toBeGreaterThan(firstExpiry + 1_400);
    expect(await redis.get(owner.lockKey('long'))).toBe(lock.token);
    expect(await lock.release()).toBe(true);
  });

  it("a lock deleted behind its holder's back aborts its signal; no unhandled rejection", async () => {
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    try {
      const locks = await lockApp(t, t.prefix());
      const lock = await locks.acquire('stolen', { ttlMs: 300 });
      const aborted = deferred<unknown>();
      lock.signal.addEventListener('abort', () => aborted.resolve(lock.signal.reason));
      await redis.del(locks.lockKey('stolen'));
      const reason = await aborted.promise;
      expect(reason).toBeInstanceOf(LockLostError);
      expect((reason as LockLostError).message).toMatch(/stolen.*deleted, expired or taken/);
      expect(lock.held).toBe(false);
      await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
      // Someone else takes it; the old holder's release must not delete the new owner's lock.
      const next = await locks.acquire('stolen', { ttlMs: 5_000 });
      expect(await lock.release()).toBe(false);
      expect(await redis.get(locks.lockKey('stolen'))).toBe(next.token);
      await next.release();
      await new Promise((r) => setImmediate(r));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });

  /** Blocks the event loop (no timer, no I/O callback runs), as a paused or CPU-bound process. */
  const busyWait = (ms: number): void => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      // spin
    }
  };

  it('a lease run out while the process did not run: held is false at once, assertHeld throws, the signal is aborted', async () => {
    const locks = await lockApp(t, t.prefix());
    const lock = await locks.acquire('paused', { ttlMs: 500, autoExtend: false });
    expect(lock.held).toBe(true);
    expect(() => lock.assertHeld()).not.toThrow();
    const signal = lock.signal;
    busyWait(700);
    // No timer has run yet: the lock still finds out, from the clock.
    expect(lock.held).toBe(false);
    expect(() => lock.assertHeld()).toThrow(LockLostError);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as LockLostError).message).toMatch(/paused.*expired \(autoExtend is off\)/);
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);

    // With renewals on, a blocked loop past the lease is the process's fault, and the reason says so.
    const renewed = await locks.acquire('paused-renewed', { ttlMs: 500 });
    const aborted = deferred<unknown>();
    renewed.signal.addEventListener('abort', () => aborted.resolve(renewed.signal.reason));
    busyWait(700);
    await new Promise((r) => setImmediate(r));
    expect(renewed.held).toBe(false);
    expect(((await aborted.promise) as LockLostError).message).toMatch(
      /the process did not run in time \(paused, or its event loop blocked\)/,
    );
    // A released lock is not held either.
    const released = await locks.acquire('paused-released', { ttlMs: 5_000 });
    await released.release();
    expect(() => released.assertHeld()).toThrow(/released/);
  });

  it('extend sets a new TTL that later renewals keep', async () => {
    const locks = await lockApp(t, t.prefix());
    const lock = await locks.acquire('ext', { ttlMs: 2_000, autoExtend: false });
    const before = Date.now();
    await lock.extend(20_000);
    expect(lock.ttlMs).toBe(20_000);
    expect(await redis.pttl(locks.lockKey('ext'))).toBeGreaterThanOrEqual(20_000 - (Date.now() - before) - 1);
    expect(lock.expiresAt).toBeGreaterThanOrEqual(before + 20_000);
    await lock.release();
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
  });

  it("withLock releases in every outcome and never hides the callback's error", async () => {
    const locks = await lockApp(t, t.prefix());
    const seen: number[] = [];
    expect(await locks.withLock('w', (lock) => (seen.push(lock.fence), 'done'))).toBe('done');
    expect(await redis.exists(locks.lockKey('w'))).toBe(0);
    const boom = new Error('business failure');
    await expect(locks.withLock('w', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(await redis.exists(locks.lockKey('w'))).toBe(0);

    // Release fails (connection gone): the callback's own error still comes out unchanged.
    const prefix = t.prefix();
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })]);
    const broken = app.get(LockService);
    const client = app.get<Redis | Cluster>(REDIS_LUA_CLIENT);
    await expect(
      broken.withLock('w2', () => {
        client.disconnect();
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('rejects bad input before touching Redis', async () => {
    const locks = await lockApp(t, t.prefix());
    await expect(locks.acquire('')).rejects.toThrow(/resource must be a non-empty string/);
    await expect(locks.acquire('x', { ttlMs: 0 })).rejects.toThrow(/LockService.acquire: option "ttlMs" must be a positive integer/);
    await expect(locks.acquire('x', { ttlMs: Number.NaN })).rejects.toThrow(/"ttlMs"/);
    await expect(locks.acquire('x', { waitMs: -1 })).rejects.toThrow(/option "waitMs" must be an integer >= 0/);
    await expect(locks.acquire('x', { waitMs: Infinity })).rejects.toThrow(/"waitMs"/);
    await expect(locks.release('x', '')).rejects.toThrow(/token/);
    expect(await redis.exists(locks.lockKey('x'))).toBe(0);
  });

  it('shutdown stops renewals and aborts the signals of held locks', async () => {
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })]);
    const lock = await app.get(LockService).acquire('held-at-exit', { ttlMs: 5_000 });
    await app.close();
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockLostError);
  });
});

describe('LockService module options', () => {
  const { standalone } = harnessAddresses();

  const bootError = (lock: unknown) => bootErrorOf({ url: `redis://${standalone.host}:${standalone.port}`, lock } as RedisLuaModuleOptions);

  it('validates forRoot({ lock }) at boot, naming the option', async () => {
    expect((await bootError({ ttlMs: 0 }))?.message).toMatch(/forRoot\(\{ lock \}\): option "ttlMs" must be a positive integer/);
    expect((await bootError({ ttlMs: 1.5 }))?.message).toMatch(/"ttlMs"/);
    expect((await bootError({ waitMs: -5 }))?.message).toMatch(/forRoot\(\{ lock \}\): option "waitMs" must be an integer >= 0/);
    expect(await bootError({ ttlMs: 1_000, waitMs: 0 })).toBeUndefined();
  });

  it('applies the module defaults', async () => {
    @Module({
      imports: [RedisLuaModule.forRoot({ url: `redis://${standalone.host}:${standalone.port}`, lock: { ttlMs: 1234, waitMs: 0 } })],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
    try {
      expect(app.get(LockService).defaults).toEqual({ ttlMs: 1234, waitMs: 0 });
    } finally {
      await app.close();
    }
  });
});
