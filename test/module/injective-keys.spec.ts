/**
 * Issue 13's collisions, each over HTTP on Express and Fastify (standalone and cluster) or through the
 * services: distinct callers get distinct buckets, locks, members and keys, or a typed input error
 * (lone surrogates); a key function without an answer never admits a request from a shared bucket.
 */
import { Body, Controller, Get, Headers, type INestApplication, Post } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { ExecutionContext } from '@nestjs/common';
import fc from 'fast-check';
import {
  BoundedCounterService,
  CacheAsideService,
  CurrentLock,
  LeaderboardInputError,
  LeaderboardService,
  Lock,
  LockInputError,
  LockService,
  RateLimit,
  RateLimiterService,
  RateLimitInputError,
  RedisLuaInputError,
  RedisLuaModule,
  WithLock,
} from 'nest-redis-lua';
import { compileLockResource, resolveLockResource } from '../../lib/lock/lock-resource';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { DECIDED } from '../harness/decided';
import { deferred } from '../lock/lock-test-utils';

const MINUTE = 60_000;
type Platform = 'express' | 'fastify';

const headerKey = (ctx: ExecutionContext): string | undefined =>
  ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-user'];
const bodyKey = (ctx: ExecutionContext): unknown => ctx.switchToHttp().getRequest<{ body?: { user?: unknown } }>().body?.user;

/** What a test controls in the handlers. */
class Gate {
  entered = deferred<Lock>();
  open = deferred();
}

function controllers(gate: Gate) {
  @Controller()
  class KeysController {
    @Get('by-header')
    @RateLimit({ limit: 1, windowMs: MINUTE, key: headerKey as (ctx: ExecutionContext) => string })
    byHeader(@Headers('x-user') user: string | undefined): { user: string | undefined } {
      return { user };
    }

    @Post('by-body')
    @RateLimit({ limit: 1, windowMs: MINUTE, key: bodyKey as (ctx: ExecutionContext) => string })
    byBody(): { ok: true } {
      return { ok: true };
    }

    @Get('by-ip')
    @RateLimit({ limit: 1, windowMs: MINUTE })
    byIp(): { ok: true } {
      return { ok: true };
    }

    @Post('transfer')
    @WithLock('tr:{body.from}-{body.to}', { waitMs: 0 })
    async transfer(@Body() body: { hold?: boolean }, @CurrentLock() lock: Lock): Promise<{ resource: string }> {
      if (body.hold) {
        gate.entered.resolve(lock);
        await gate.open.promise;
      }
      return { resource: lock.resource };
    }
  }
  return [KeysController];
}

async function httpApp(t: TopologyContext, platform: Platform, gate: Gate): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), rateLimit: DECIDED })],
    controllers: controllers(gate),
  }).compile();
  const app =
    platform === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter({ trustProxy: true }), { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  if (platform === 'express') (app.getHttpAdapter().getInstance() as { set(k: string, v: unknown): void }).set('trust proxy', true);
  opened.push(app);
  await app.listen(0, '127.0.0.1');
  return app;
}

const opened: INestApplication[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((app) => app.close()));
});

function client(app: INestApplication) {
  const { port } = app.getHttpServer().address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  return {
    get: (path: string, headers: Record<string, string> = {}) => fetch(base + path, { headers }),
    /** A raw JSON text as the body, so that it can hold `\ud800` escapes. */
    post: (path: string, json: string) =>
      fetch(base + path, { method: 'POST', body: json, headers: { 'content-type': 'application/json' } }),
  };
}

const statuses = async (responses: Array<Promise<Response>>): Promise<number[]> =>
  Promise.all(responses.map(async (r) => (await r).status)).then((all) => all);

describeTopologies('injective keys over HTTP', (t) => {
  describe.each<Platform>(['express', 'fastify'])('%s', (platform) => {
    it('a key function returning undefined fails the request (500, nothing counted); the literal "undefined" has its own bucket', async () => {
      const http = client(await httpApp(t, platform, new Gate()));
      // Missing header: never a 2xx, however many; nothing was recorded for them.
      expect(await statuses([http.get('/by-header'), http.get('/by-header'), http.get('/by-header')])).toEqual([500, 500, 500]);
      expect((await http.get('/by-header', { 'x-user': 'undefined' })).status).toBe(200);
      expect((await http.get('/by-header', { 'x-user': 'undefined' })).status).toBe(429);
      expect((await http.get('/by-header', { 'x-user': 'ann' })).status).toBe(200);
      // null, "", an object from a JSON body: refused the same way, never one shared bucket.
      for (const body of ['{"user":null}', '{"user":""}', '{"user":{}}', '{}'])
        expect((await http.post('/by-body', body)).status).toBe(500);
      expect((await http.post('/by-body', '{"user":"null"}')).status).toBe(201);
      expect((await http.post('/by-body', '{"user":7}')).status).toBe(201);
      expect((await http.post('/by-body', '{"user":"7"}')).status).toBe(429);
    });

    it('lone surrogates: a 400 for a rate-limit key and a lock placeholder, never the bucket of U+FFFD', async () => {
      const http = client(await httpApp(t, platform, new Gate()));
      expect((await http.post('/by-body', '{"user":"\\ud800"}')).status).toBe(400);
      expect((await http.post('/by-body', '{"user":"\\udbff"}')).status).toBe(400);
      expect((await http.post('/by-body', '{"user":"\\ufffd"}')).status).toBe(201);
      expect((await http.post('/by-body', '{"user":"\\ud83d\\udd11"}')).status).toBe(201);
      const res = await http.post('/transfer', '{"from":"\\ud800","to":"x"}');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ message: 'Cannot lock this request: {body.from} is not well-formed Unicode' });
    });

    it('@WithLock("tr:{body.from}-{body.to}"): a-b + c and a + b-c are two locks, held at once', async () => {
      const gate = new Gate();
      const http = client(await httpApp(t, platform, gate));
      const holder = http.post('/transfer', '{"from":"a-b","to":"c","hold":true}');
      const held = await gate.entered.promise;
      const other = await http.post('/transfer', '{"from":"a","to":"b-c"}');
      expect(other.status).toBe(201);
      const { resource } = (await other.json()) as { resource: string };
      expect(resource).not.toBe(held.resource);
      expect([held.resource, resource]).toEqual(['tr:a%2Db-c', 'tr:a-b%2Dc']);
      // The same values do meet: the lock works.
      expect((await http.post('/transfer', '{"from":"a-b","to":"c"}')).status).toBe(409);
      gate.open.resolve();
      expect((await holder).status).toBe(201);
    });

    it('client IPs behind a trusted proxy: every IPv4-mapped spelling is its IPv4 bucket, not the one of ::1', async () => {
      const http = client(await httpApp(t, platform, new Gate()));
      const from = (ip: string) => http.get('/by-ip', { 'x-forwarded-for': ip });
      expect((await from('1.2.3.4')).status).toBe(200);
      for (const spelling of ['::ffff:102:304', '0:0:0:0:0:ffff:1.2.3.4', '::ffff:1.2.3.4', '::FFFF:0102:0304']) {
        expect((await from(spelling)).status).toBe(429);
      }
      expect((await from('::1')).status).toBe(200);
      // One /64: the same client; the next /64: another.
      expect((await from('2001:db8:1:2::1')).status).toBe(200);
      expect((await from('2001:db8:1:2:ffff::9')).status).toBe(429);
      expect((await from('2001:db8:1:3::1')).status).toBe(200);
      // Not an address (a proxy writing garbage): the connection's peer counts, so forged values share one bucket.
      expect((await from('garbage')).status).toBe(200);
      expect((await from('other-garbage')).status).toBe(429);
      expect((await from('1.2.3')).status).toBe(429);
    });
  });
});

describeTopologies('injective keys in the services', (t) => {
  it('lone surrogates are a typed input error in every feature, before anything is sent; U+FFFD itself is fine', async () => {
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })]);
    const lone = ['\ud800', 'a\udbff', '\udc00b'];
    const limiter = app.get(RateLimiterService);
    const locks = app.get(LockService);
    const boards = app.get(LeaderboardService);
    const counters = app.get(BoundedCounterService);
    const cache = app.get(CacheAsideService);
    for (const text of lone) {
      await expect(limiter.consume(text, { limit: 1, windowMs: MINUTE })).rejects.toThrow(RateLimitInputError);
      await expect(locks.acquire(text)).rejects.toThrow(LockInputError);
      await expect(boards.submit('board', text, 1)).rejects.toThrow(LeaderboardInputError);
      await expect(boards.submit(text, 'member', 1)).rejects.toThrow(/board must be well-formed Unicode/);
      await expect(counters.increment(text, 1, 5)).rejects.toThrow(RedisLuaInputError);
      await expect(cache.getOrLoad(text, MINUTE, async () => 'v')).rejects.toThrow(RedisLuaInputError);
    }
    // The two texts that used to meet as U+FFFD, and U+FFFD itself: one refused, one admitted.
    await expect(limiter.consume('\ufffd', { limit: 1, windowMs: MINUTE })).resolves.toMatchObject({ allowed: true });
    await boards.submit('board', '\ufffd', 3);
    await expect(boards.top('board', 10)).resolves.toEqual([expect.objectContaining({ member: '\ufffd', score: 3 })]);
  });
});

describe('@WithLock resource templates', () => {
  const resolve = (template: string, request: object): Promise<string> => {
    return resolveLockResource(compileLockResource(template, 'T.h'), '@WithLock on T.h', {
      switchToHttp: () => ({ getRequest: () => request }),
    } as unknown as ExecutionContext);
  };

  it('distinct placeholder values give distinct resources, whatever the separators and values hold', async () => {
    const text = fc.string({
      unit: fc.constantFrom('a', 'b', '-', ':', '%', '{', '}', '#', '|', '.', '→', '1', 'x'),
      minLength: 1,
      maxLength: 6,
    });
    const separator = fc.string({ unit: fc.constantFrom('-', ':', '|', '.', 'x', '1', '→', '_', 'A'), minLength: 1, maxLength: 2 });
    await fc.assert(
      fc.asyncProperty(separator, separator, fc.tuple(text, text, text), fc.tuple(text, text, text), async (s1, s2, a, b) => {
        fc.pre(JSON.stringify(a) !== JSON.stringify(b));
        const template = `k:{body.a}${s1}{body.b}${s2}{body.c}`;
        const one = await resolve(template, { body: { a: a[0], b: a[1], c: a[2] } });
        const two = await resolve(template, { body: { a: b[0], b: b[1], c: b[2] } });
        expect(one).not.toBe(two);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps readable resources where nothing is ambiguous', async () => {
    await expect(resolve('order:{params.id}', { params: { id: '42' } })).resolves.toBe('order:42');
    await expect(resolve('user:{headers.x-user}:{query.item}', { headers: { 'x-user': 'ann:{x}' }, query: { item: 3 } })).resolves.toBe(
      'user:ann%3A%7Bx%7D:3',
    );
    await expect(resolve('tr:{body.from}→{body.to}', { body: { from: 'a→b', to: 'c' } })).resolves.toBe('tr:a%u2192b→c');
  });

  it('refuses templates whose placeholders cannot be told apart, naming the handler', () => {
    expect(() => compileLockResource('{body.a}{body.b}', '@WithLock on T.h')).toThrow(
      /@WithLock on T\.h: placeholders \{body\.a\} and \{body\.b\} need text between them/,
    );
    expect(() => compileLockResource('{body.a}%{body.b}', '@WithLock on T.h')).toThrow(/"%" between placeholders/);
    expect(() => compileLockResource('a}{body.a}', '@WithLock on T.h')).toThrow(LockInputError);
  });

  it('a resource function must return a non-empty string or a finite number', async () => {
    const withFunction = (fn: () => unknown): Promise<string> =>
      resolveLockResource({ resource: fn as () => string }, '@WithLock on T.h', {} as ExecutionContext);
    await expect(withFunction(() => 'r')).resolves.toBe('r');
    await expect(withFunction(() => 7)).resolves.toBe('7');
    for (const bad of [undefined, null, '', {}, Number.NaN]) {
      await expect(withFunction(() => bad)).rejects.toThrow(
        /@WithLock on T\.h: the resource function returned .*; it must return a non-empty string/,
      );
    }
  });
});
