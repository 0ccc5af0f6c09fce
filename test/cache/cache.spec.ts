import type { INestApplication } from '@nestjs/common';
import {
  CacheAsideError,
  CacheAsideService,
  CacheInputError,
  CacheWaitTimeoutError,
  KeyBuilder,
  REDIS_LUA_KEYS,
  RedisLuaModule,
  type CacheSerializer,
} from 'nest-redis-lua';
import { describeTopologies } from '../harness/topologies';

/** A promise with its resolve function, to hold a loader until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describeTopologies('CacheAsideService', (t) => {
  const boot = (keyPrefix: string): Promise<INestApplication> => t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix })]);

  /** Two application instances (two connections, two subscribers) sharing one key prefix. */
  const twoInstances = async () => {
    const prefix = t.prefix();
    const apps = await Promise.all([boot(prefix), boot(prefix)]);
    return {
      services: apps.map((a) => a.get(CacheAsideService)),
      keys: apps[0].get<KeyBuilder>(REDIS_LUA_KEYS),
    };
  };

  it('a hit returns the stored value without calling the loader; invalidate forces a reload', async () => {
    const {
      services: [cache],
      keys,
    } = await twoInstances();
    let calls = 0;
    const loader = async () => ({ n: ++calls, at: 'db' });
    expect(await cache.getOrLoad('user:1', 60_000, loader)).toEqual({ n: 1, at: 'db' });
    expect(await cache.getOrLoad('user:1', 60_000, loader)).toEqual({ n: 1, at: 'db' });
    expect(calls).toBe(1);
    const redis = t.client();
    const ttl = await redis.pttl(keys.key('cache', ['user:1'], 'v'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await redis.exists(keys.key('cache', ['user:1'], 'lock'))).toBe(0);

    expect(await cache.invalidate('user:1')).toBe(true);
    expect(await cache.invalidate('user:1')).toBe(false);
    expect(await cache.getOrLoad('user:1', 60_000, loader)).toEqual({ n: 2, at: 'db' });
  });

  it('invalidate during a load: the loader that read old data does not store it, a waiter loads the new data', async () => {
    const {
      services: [a, b],
    } = await twoInstances();
    let db = 'v1';
    const readOld = gate();
    const proceed = gate();
    const slow = a.getOrLoad('product:9', 60_000, async () => {
      const snapshot = db; // reads v1 ...
      readOld.open();
      await proceed.promise; // ... and is slow to return it
      return snapshot;
    });
    await readOld.promise;
    const waiter = b.getOrLoad('product:9', 60_000, async () => db, { waitMs: 10_000 });
    db = 'v2';
    expect(await a.invalidate('product:9')).toBe(true); // cancels the load in progress
    proceed.open();
    expect(await slow).toBe('v1'); // its own caller still gets what it loaded
    expect(await waiter).toBe('v2'); // woken by the invalidation, loads again
    expect(await a.getOrLoad('product:9', 60_000, async () => 'v3')).toBe('v2');
  });

  it('50 concurrent misses over two instances: the loader runs exactly once and all 50 get its value', async () => {
    const { services } = await twoInstances();
    const started = gate();
    const release = gate();
    let calls = 0;
    const loader = async () => {
      calls += 1;
      started.open();
      await release.promise;
      return { price: 12.5, calls };
    };
    // A lock that would outlive the test: waiters finish only if the loader's PUBLISH wakes them.
    const options = { lockTtlMs: 60_000, waitMs: 60_000 };
    const pending = Array.from({ length: 50 }, (_, i) => services[i % 2].getOrLoad('product:7', 60_000, loader, options));
    await started.promise;
    // Give the other 49 callers time to find the lock taken and start waiting (the result does not depend on it).
    setTimeout(release.open, 100);
    const values = await Promise.all(pending);
    expect(calls).toBe(1);
    expect(values).toEqual(Array.from({ length: 50 }, () => ({ price: 12.5, calls: 1 })));
  });

  it('a throwing loader: only its caller gets the error, the lock is released, the others retry and share the next load', async () => {
    const { services, keys } = await twoInstances();
    const started = gate();
    const failing = gate();
    let calls = 0;
    const loader = async () => {
      calls += 1;
      if (calls === 1) {
        started.open();
        await failing.promise;
        throw new Error('database down');
      }
      return 'fresh';
    };
    const pending = Array.from({ length: 20 }, (_, i) =>
      services[i % 2].getOrLoad('report', 60_000, loader, { lockTtlMs: 60_000, waitMs: 60_000 }).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
    );
    await started.promise;
    setTimeout(failing.open, 100);
    const outcomes = await Promise.all(pending);
    const errors = outcomes.filter((o): o is { error: Error } => 'error' in o);
    expect(errors).toHaveLength(1);
    expect(errors[0].error.message).toBe('database down');
    expect(outcomes.filter((o) => 'value' in o && o.value === 'fresh')).toHaveLength(19);
    expect(calls).toBe(2);
    expect(await t.client().exists(keys.key('cache', ['report'], 'lock'))).toBe(0);
  });

  it('a loader that died holding the lock: a waiter takes over when the lock expires', async () => {
    const {
      services: [cache],
      keys,
    } = await twoInstances();
    await t.client().set(keys.key('cache', ['orphan'], 'lock'), 'crashed-loader', 'PX', 300);
    expect(await cache.getOrLoad('orphan', 60_000, () => 'recovered', { waitMs: 10_000 })).toBe('recovered');
  });

  it("the loader lock is a lease of at most a second, renewed while the loader runs (a crashed loader's lock expires within a second, not lockTtlMs)", async () => {
    const {
      services: [a, b],
      keys,
    } = await twoInstances();
    const lockKey = keys.key('cache', ['leased'], 'lock');
    const redis = t.client();
    const started = gate();
    const finish = gate();
    const loading = a.getOrLoad(
      'leased',
      60_000,
      async () => {
        started.open();
        await finish.promise;
        return 'loaded';
      },
      { lockTtlMs: 60_000 },
    );
    await started.promise;
    const first = await redis.pttl(lockKey);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(1_000); // a lease, not the 60 s lockTtlMs
    // Renewed while the loader runs: its PTTL goes up again (no event for it: poll).
    for (let last = first, i = 0; ; i++) {
      const now = await redis.pttl(lockKey);
      if (now > last) break;
      if (i > 1_000) throw new Error(`the lease was never renewed (pttl ${now})`);
      last = now;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await redis.get(lockKey)).not.toBeNull();
    // Another caller that does not wait finds the load in progress.
    await expect(b.getOrLoad('leased', 60_000, () => 'other', { waitMs: 0 })).rejects.toBeInstanceOf(CacheWaitTimeoutError);
    finish.open();
    expect(await loading).toBe('loaded');
    expect(await redis.exists(lockKey)).toBe(0);
  });

  it('waiting past waitMs fails with CacheWaitTimeoutError and never calls the loader', async () => {
    const {
      services: [cache],
      keys,
    } = await twoInstances();
    await t.client().set(keys.key('cache', ['slow'], 'lock'), 'someone-else', 'PX', 30_000);
    let calls = 0;
    const err = await cache.getOrLoad('slow', 60_000, () => ++calls, { waitMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheWaitTimeoutError);
    expect((err as CacheWaitTimeoutError).key).toBe('slow');
    expect(calls).toBe(0);
    await expect(cache.getOrLoad('slow', 60_000, () => 1, { waitMs: 0 })).rejects.toBeInstanceOf(CacheWaitTimeoutError);
  });

  it('on shutdown a waiting caller fails with CacheAsideError instead of holding the process open', async () => {
    const prefix = t.prefix();
    const app = await boot(prefix);
    const keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
    await t.client().set(keys.key('cache', ['held'], 'lock'), 'someone-else', 'PX', 60_000);
    const waiting = app
      .get(CacheAsideService)
      .getOrLoad('held', 60_000, () => 1, { waitMs: 60_000 })
      .catch((e: unknown) => e);
    await app.close();
    const err = await waiting;
    expect(err).toBeInstanceOf(CacheAsideError);
    expect((err as Error).message).toContain('shutting down');
  });

  it('uses a custom serializer', async () => {
    const { services } = await twoInstances();
    const dates: CacheSerializer<Date> = {
      serialize: (d) => String(d.getTime()),
      deserialize: (text) => new Date(Number(text)),
    };
    const when = new Date('2026-01-02T03:04:05.678Z');
    expect(await services[0].getOrLoad('when', 60_000, () => when, { serializer: dates })).toEqual(when);
    const again = await services[1].getOrLoad('when', 60_000, () => new Date(0), { serializer: dates });
    expect(again).toBeInstanceOf(Date);
    expect(again).toEqual(when);
  });

  it('a value the serializer cannot store (undefined as JSON) is an error to the loader caller and releases the lock', async () => {
    const {
      services: [cache],
      keys,
    } = await twoInstances();
    await expect(cache.getOrLoad('nothing', 60_000, () => undefined)).rejects.toThrow('cannot store');
    expect(await t.client().exists(keys.key('cache', ['nothing'], 'lock'))).toBe(0);
    expect(await cache.getOrLoad('nothing', 60_000, () => null)).toBeNull();
  });

  it('wrong key, TTLs and options: clear errors, nothing read or written', async () => {
    const {
      services: [cache],
      keys,
    } = await twoInstances();
    let calls = 0;
    const loader = () => ++calls;
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => cache.getOrLoad('', 1000, loader), 'key'],
      [() => cache.getOrLoad('k', 0, loader), 'ttlMs'],
      [() => cache.getOrLoad('k', -5, loader), 'ttlMs'],
      [() => cache.getOrLoad('k', Number.NaN, loader), 'ttlMs'],
      [() => cache.getOrLoad('k', 1.5, loader), 'ttlMs'],
      [() => cache.getOrLoad('k', 1000, loader, { lockTtlMs: 0 }), 'lockTtlMs'],
      [() => cache.getOrLoad('k', 1000, loader, { waitMs: -1 }), 'waitMs'],
      [() => cache.getOrLoad('k', 1000, 'nope' as unknown as () => number), 'loader'],
    ];
    for (const [call, field] of cases) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CacheInputError);
      expect((err as CacheInputError).field).toBe(field);
      expect((err as Error).message).toContain(field);
    }
    expect(calls).toBe(0);
    const redis = t.client();
    for (const key of ['k', '']) {
      expect(await redis.exists(keys.key('cache', [key], 'v'))).toBe(0);
      expect(await redis.exists(keys.key('cache', [key], 'lock'))).toBe(0);
    }
  });
});
