import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, Get, HttpException, type INestApplication, Param, Post, Query } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { Cluster, Redis } from 'ioredis';
import { CurrentLock, InjectRedis, Lock, LockService, RedisLuaModule, WithLock } from 'nest-redis-lua';
import { Observable } from 'rxjs';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { deferred, delay, subscribers, waitFor } from './lock-test-utils';

/** What the test controls and observes in the handlers of one test. */
class Hooks {
  counterKey = '';
  entered = deferred<Lock>();
  open = deferred();
  streaming = deferred();
  waiterRan = 0;
}

function makeController(hooks: Hooks) {
  @Controller()
  class LockedController {
    constructor(@InjectRedis() private readonly redis: Redis | Cluster) {}

    @Post('counter/:id')
    @WithLock('counter:{params.id}', { ttlMs: 5_000, waitMs: 25_000 })
    async bump(): Promise<{ value: number }> {
      const value = Number((await this.redis.get(hooks.counterKey)) ?? 0);
      await delay(2);
      await this.redis.set(hooks.counterKey, String(value + 1));
      return { value: value + 1 };
    }

    @Post('gate/:id')
    @WithLock('gate:{params.id}', { ttlMs: 5_000, waitMs: 0 })
    async hold(@CurrentLock() lock: Lock): Promise<{ fence: number }> {
      hooks.entered.resolve(lock);
      await hooks.open.promise;
      return { fence: lock.fence };
    }

    @Post('gate423/:id')
    @WithLock('gate:{params.id}', { waitMs: 0, conflictStatus: 423 })
    other(): string {
      return 'never while the gate is held';
    }

    @Get('fail/:status')
    @WithLock('fail:{params.status}', { waitMs: 0 })
    fail(@Param('status') status: string): never {
      throw new HttpException({ custom: 'handler body' }, Number(status));
    }

    @Get('user')
    @WithLock('user:{headers.x-user}:{query.item}', { waitMs: 0 })
    user(@CurrentLock() lock: Lock): { resource: string } {
      return { resource: lock.resource };
    }

    @Get('slow')
    @WithLock('slow', { ttlMs: 1_000, waitMs: 0 })
    async slow(@Query('ms') ms: string, @CurrentLock() lock: Lock): Promise<{ aborted: boolean }> {
      if (Number(ms) > 0) hooks.entered.resolve(lock);
      await delay(Number(ms));
      return { aborted: lock.signal.aborted };
    }

    @Get('outlived/:mode')
    @WithLock('outlived:{params.mode}', { ttlMs: 300, autoExtend: false, waitMs: 0 })
    async outlived(@CurrentLock() lock: Lock): Promise<{ fence: number }> {
      // The lease runs out while the handler works (its signal aborts at expiresAt).
      await new Promise((resolve) => lock.signal.addEventListener('abort', resolve));
      return { fence: lock.fence };
    }

    @Get('outlived-log')
    @WithLock('outlived-log', { ttlMs: 300, autoExtend: false, waitMs: 0, onLost: 'log' })
    async outlivedLogged(@CurrentLock() lock: Lock): Promise<{ fence: number }> {
      await new Promise((resolve) => lock.signal.addEventListener('abort', resolve));
      return { fence: lock.fence };
    }

    @Get('released-early')
    @WithLock('released-early', { waitMs: 0 })
    async releasedEarly(@CurrentLock() lock: Lock): Promise<{ released: boolean }> {
      return { released: await lock.release() };
    }

    @Get('stream/:id')
    @WithLock('stream:{params.id}', { ttlMs: 5_000, waitMs: 25_000 })
    stream(): Observable<string> {
      hooks.waiterRan += 1;
      // Never completes: only the client going away ends it.
      return new Observable<string>(() => hooks.streaming.resolve());
    }
  }
  return LockedController;
}

/** Two Nest apps (two LockServices, two connections) sharing one Redis and one key prefix. */
async function twoApps(t: TopologyContext, hooks: Hooks): Promise<[INestApplication, INestApplication]> {
  const prefix = t.prefix();
  const start = async (): Promise<INestApplication> => {
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })], {
      controllers: [makeController(hooks)],
    });
    await app.listen(0, '127.0.0.1');
    return app;
  };
  return [await start(), await start()];
}

function url(app: INestApplication, path: string): string {
  const { port } = app.getHttpServer().address() as AddressInfo;
  return `http://127.0.0.1:${port}${path}`;
}

/** A raw request that the test can cut off mid-way, as a client going away. */
function rawGet(app: INestApplication, path: string): { destroy: () => void; closed: Promise<void> } {
  const req = httpRequest(url(app, path));
  const closed = deferred();
  req.on('error', () => undefined);
  req.on('close', () => closed.resolve());
  req.end();
  return { destroy: () => req.destroy(), closed: closed.promise };
}

describeTopologies('@WithLock', (t) => {
  let redis: Redis | Cluster;
  beforeAll(() => {
    redis = t.client();
  });

  it("onLost: a handler that outlives its lock answers 409 ('error', the default) or its own 2xx ('log'); releasing early is not a loss", async () => {
    const [a] = await twoApps(t, new Hooks());
    const lost = await fetch(url(a, '/outlived/error'));
    expect(lost.status).toBe(409);
    expect(await lost.json()).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'The lock of this request was lost before it finished: another request may have run at the same time',
    });
    const logged = await fetch(url(a, '/outlived-log'));
    expect(logged.status).toBe(200);
    expect(await logged.json()).toEqual({ fence: expect.any(Number) });
    const early = await fetch(url(a, '/released-early'));
    expect([early.status, await early.json()]).toEqual([200, { released: true }]);
  });

  it('mutual exclusion: 200 concurrent read-modify-write requests over two apps lose no update', async () => {
    const hooks = new Hooks();
    hooks.counterKey = `${t.prefix()}:counter`;
    const apps = await twoApps(t, hooks);
    const started = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(url(apps[i % 2], '/counter/1'), { method: 'POST' }).then(async (res) => {
          await res.arrayBuffer();
          return res.status;
        }),
      ),
    );
    const ok = statuses.filter((s) => s >= 200 && s < 300).length;
    console.log(`[${t.topology}] 200 locked requests over 2 apps: ${ok} 2xx in ${(performance.now() - started).toFixed(0)} ms`);
    expect(statuses.filter((s) => s < 200 || (s >= 300 && s !== 409))).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(Number(await redis.get(hooks.counterKey))).toBe(ok);
    // With waitMs 25 s on an idle machine every request gets its turn.
    expect(ok).toBe(200);
  });

  it('waitMs 0 under contention: 409 with Retry-After and a JSON body; conflictStatus is configurable', async () => {
    const hooks = new Hooks();
    const [a, b] = await twoApps(t, hooks);
    const holder = fetch(url(a, '/gate/9'), { method: 'POST' });
    const lock = await hooks.entered.promise;
    expect(lock).toBeInstanceOf(Lock);

    const res = await fetch(url(b, '/gate/9'), { method: 'POST' });
    expect(res.status).toBe(409);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(5);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'The resource is locked by another request; retry later',
      retryAfter,
    });
    const locked = await fetch(url(a, '/gate423/9'), { method: 'POST' });
    expect(locked.status).toBe(423);
    expect(((await locked.json()) as { error: string }).error).toBe('Locked');

    hooks.open.resolve();
    const done = await holder;
    expect(done.status).toBe(201);
    expect(await done.json()).toEqual({ fence: lock.fence });
    // Released: the next request gets in.
    hooks.entered = deferred();
    expect((await fetch(url(b, '/gate/9'), { method: 'POST' })).status).toBe(201);
  });

  it('handler errors keep their status and body, and release the lock', async () => {
    const hooks = new Hooks();
    const [a] = await twoApps(t, hooks);
    for (const status of [404, 418, 404]) {
      const res = await fetch(url(a, `/fail/${status}`));
      expect(res.status).toBe(status);
      expect(await res.json()).toEqual({ custom: 'handler body' });
    }
    expect(await a.get(LockService).tryAcquire('fail:404')).not.toBeNull();
  });

  it('a missing placeholder value is a 400, never a lock on "undefined"', async () => {
    const hooks = new Hooks();
    const [a] = await twoApps(t, hooks);
    const noHeader = await fetch(url(a, '/user?item=3'));
    expect(noHeader.status).toBe(400);
    expect(((await noHeader.json()) as { message: string }).message).toMatch(/\{headers\.x-user\} is missing/);
    const noQuery = await fetch(url(a, '/user'), { headers: { 'x-user': 'ann' } });
    expect(noQuery.status).toBe(400);
    expect(((await noQuery.json()) as { message: string }).message).toMatch(/\{query\.item\} is missing/);
    const emptyHeader = await fetch(url(a, '/user?item=3'), { headers: { 'x-user': '' } });
    expect(emptyHeader.status).toBe(400);
    const ok = await fetch(url(a, '/user?item=3'), { headers: { 'x-user': 'ann:{x}' } });
    expect(ok.status).toBe(200);
    // Values are encoded like key parts: ":" and braces cannot split or fake a resource.
    expect(await ok.json()).toEqual({ resource: 'user:ann%3A%7Bx%7D:3' });
  });

  it('a handler running 3× ttlMs keeps its lock (watchdog) and no other request gets in', async () => {
    const hooks = new Hooks();
    const [a, b] = await twoApps(t, hooks);
    const slow = fetch(url(a, '/slow?ms=3000'));
    let finished = false;
    void slow.then(() => (finished = true));
    await hooks.entered.promise;
    const rivals: number[] = [];
    while (!finished) {
      const res = await fetch(url(b, '/slow?ms=0'));
      await res.arrayBuffer();
      if (!finished) rivals.push(res.status);
      await delay(50);
    }
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ aborted: false });
    expect(rivals.length).toBeGreaterThan(5);
    expect(rivals.every((s) => s === 409)).toBe(true);
    expect((await fetch(url(b, '/slow?ms=0'))).status).toBe(200);
  });

  it('a client disconnect mid-handler releases the lock', async () => {
    const hooks = new Hooks();
    const [a] = await twoApps(t, hooks);
    const locks = a.get(LockService);
    const listener = t.client();
    const released = deferred<string>();
    listener.on('message', (_channel: string, message: string) => released.resolve(message));
    await listener.subscribe(locks.channel('stream:5'));

    const client = rawGet(a, '/stream/5');
    await hooks.streaming.promise;
    expect(await locks.tryAcquire('stream:5')).toBeNull();
    // Releases publish a notice only while a waiter is counted: wait for one.
    const waiting = locks.acquire('stream:5', { waitMs: 4_000 });
    const counter = t.client();
    await waitFor(async () => (await counter.get(`${locks.lockKey('stream:5')}:waiters`)) === '1', 'the waiter to be counted');
    client.destroy();
    expect(await released.promise).toBe('released');
    const lock = await waiting;
    expect(lock).not.toBeNull();
    await lock.release();
  });

  it('a client that goes away while waiting for the lock never takes it', async () => {
    const hooks = new Hooks();
    const [a] = await twoApps(t, hooks);
    const locks = a.get(LockService);
    const masters = await t.masters();
    const holder = await locks.acquire('stream:6', { ttlMs: 10_000 });
    const client = rawGet(a, '/stream/6');
    await waitFor(async () => (await subscribers(masters, locks.channel('stream:6'))) === 1, 'the request to wait');
    client.destroy();
    await client.closed;
    await waitFor(async () => (await subscribers(masters, locks.channel('stream:6'))) === 0, 'the request to stop waiting');
    expect(await holder.release()).toBe(true);
    const next = await locks.tryAcquire('stream:6');
    expect(next).not.toBeNull();
    expect(hooks.waiterRan).toBe(0);
    await next?.release();
  });

  it('works on Fastify: 409 with Retry-After, 400 on a missing placeholder', async () => {
    const hooks = new Hooks();
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })],
      controllers: [makeController(hooks)],
    }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    try {
      await app.init();
      await app.getHttpAdapter().getInstance().ready();
      await app.listen(0, '127.0.0.1');
      const holder = fetch(url(app, '/gate/1'), { method: 'POST' });
      await hooks.entered.promise;
      const res = await fetch(url(app, '/gate/1'), { method: 'POST' });
      expect(res.status).toBe(409);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await res.json()).toMatchObject({ statusCode: 409, error: 'Conflict' });
      expect((await fetch(url(app, '/user'))).status).toBe(400);
      hooks.open.resolve();
      expect((await holder).status).toBe(201);
    } finally {
      await app.close();
    }
  });
});

describe('@WithLock options', () => {
  const declare = (resource: string, options: object): void => {
    class Bad {
      handler(): void {}
    }
    const descriptor = Object.getOwnPropertyDescriptor(Bad.prototype, 'handler')!;
    WithLock(resource, options)(Bad.prototype, 'handler', descriptor);
  };

  it('fails at decoration time with a message naming the option and the handler', () => {
    expect(() => declare('x', { ttlMs: 0 })).toThrow(/@WithLock on Bad\.handler: option "ttlMs" must be a positive integer/);
    expect(() => declare('x', { ttlMs: 2.5 })).toThrow(/Bad\.handler: option "ttlMs"/);
    expect(() => declare('x', { waitMs: -1 })).toThrow(/Bad\.handler: option "waitMs" must be an integer >= 0/);
    expect(() => declare('x', { conflictStatus: 200 })).toThrow(/Bad\.handler: option "conflictStatus"/);
    expect(() => declare('x', { autoExtend: 'yes' })).toThrow(/Bad\.handler: option "autoExtend"/);
    expect(() => declare('order:{param.id}', {})).toThrow(/Bad\.handler: unknown placeholder "\{param\.id\}"/);
    expect(() => declare('order:{params.}', {})).toThrow(/unknown placeholder/);
    expect(() => declare('order:{params.id', {})).toThrow(/Bad\.handler: unmatched brace/);
    expect(() => declare('', {})).toThrow(/Bad\.handler: the lock resource must be a non-empty string/);
    expect(() => declare('order:{params.id}:{body.item.sku}', { ttlMs: 1000, waitMs: 0, conflictStatus: 423 })).not.toThrow();
  });
});
