/**
 * Manual bans (`forRoot({ rateLimit: { bans: true } })`: `block` / `unblock` / `isBlocked`): one key
 * per identifier in the hash tag of its limits, checked by every consume and peek in the same script,
 * shared by every instance, answered 429 by the guard; on standalone and cluster.
 */
import { Controller, Get, type INestApplication } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import {
  RateLimit,
  RateLimitInputError,
  RateLimiterService,
  RedisLuaModule,
  type RateLimitAlgorithm,
  type RateLimitModuleOptions,
  type RateLimitRule,
} from 'nest-redis-lua';
import request from 'supertest';
import { describeTopologies } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

const ALGORITHMS: RateLimitAlgorithm[] = ['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window'];
const HOUR = 3_600_000;
/** A slow call under load is slow, never a fail-open admission counted as a decision. */

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

@Controller()
class BannedController {
  @Get('ban/a')
  @RateLimit({ limit: 100, windowMs: HOUR })
  a(): string {
    return 'a';
  }

  @Get('ban/b')
  @RateLimit({ limit: 100, windowMs: HOUR, algorithm: 'token-bucket', blockMs: HOUR })
  b(): string {
    return 'b';
  }
}

describeTopologies('rate limit: manual bans', (t) => {
  async function app(
    prefix: string,
    rateLimit: RateLimitModuleOptions = { bans: true, localCacheSize: 0, ...DECIDED },
  ): Promise<INestApplication> {
    const nest = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix, rateLimit })], {
      controllers: [BannedController],
    });
    return nest;
  }
  const limiter = async (prefix = t.prefix(), rateLimit?: RateLimitModuleOptions): Promise<RateLimiterService> =>
    (await app(prefix, rateLimit)).get(RateLimiterService);

  it('a ban denies every rule set and scope of its identifier, and nobody else, until unblocked', async () => {
    const service = await limiter();
    const shapes: Array<RateLimitRule | RateLimitRule[]> = [
      ...ALGORITHMS.map((algorithm) => ({ limit: 5, windowMs: HOUR, algorithm })),
      [
        { limit: 5, windowMs: 1_000, algorithm: 'token-bucket' },
        { limit: 50, windowMs: HOUR, algorithm: 'sliding-log' },
      ],
      { limit: 5, windowMs: HOUR / 2, blockMs: HOUR },
    ];
    await service.block('mallory', 60_000, 'card testing');
    for (const rules of shapes) {
      for (const key of ['mallory', 'mallory\nGET /orders', 'mallory\nPOST /login']) {
        const consumed = await service.consume(key, rules);
        expect(consumed).toMatchObject({ allowed: false, remaining: 0, ban: { reason: 'card testing' } });
        expect(consumed.retryAfterMs).toBeGreaterThan(50_000);
        expect(consumed.retryAfterMs).toBeLessThanOrEqual(60_000);
        expect(await service.peek(key, rules, { cost: 2 })).toMatchObject({ allowed: false, ban: { reason: 'card testing' } });
      }
      expect(await service.consume('trent', rules)).toMatchObject({ allowed: true, remaining: 4 });
      expect((await service.consume('trent', rules)).ban).toBeUndefined();
    }
    // A ban is not waited out.
    expect(await service.consume('mallory', { limit: 5, windowMs: HOUR }, { waitMs: 5_000 })).toMatchObject({
      allowed: false,
      ban: { reason: 'card testing' },
    });
    const status = await service.isBlocked('mallory');
    expect(status).toMatchObject({ blocked: true, reason: 'card testing' });
    expect(status.retryAfterMs).toBeGreaterThan(50_000);
    expect(await service.isBlocked('trent')).toEqual({ blocked: false, retryAfterMs: 0 });

    expect(await service.unblock('mallory')).toBe(true);
    expect(await service.unblock('mallory')).toBe(false);
    expect(await service.isBlocked('mallory')).toEqual({ blocked: false, retryAfterMs: 0 });
    // Denials under the ban recorded nothing: every rule set is whole.
    for (const rules of shapes) expect(await service.consume('mallory\nGET /orders', rules)).toMatchObject({ allowed: true, remaining: 4 });
  });

  it('a ban without a reason, replaced by a shorter one, ends by itself', async () => {
    const service = await limiter();
    const rule = { limit: 3, windowMs: HOUR };
    await service.block('eve', HOUR);
    expect(await service.consume('eve', rule)).toMatchObject({ allowed: false, ban: {} });
    expect((await service.consume('eve', rule)).ban?.reason).toBeUndefined();
    await service.block('eve', 300, 'cool down'); // replaces the hour-long ban
    const status = await service.isBlocked('eve');
    expect(status.blocked).toBe(true);
    expect(status.retryAfterMs).toBeLessThanOrEqual(300);
    await sleep(status.retryAfterMs + 20);
    expect(await service.isBlocked('eve')).toEqual({ blocked: false, retryAfterMs: 0 });
    expect(await service.consume('eve', rule)).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('the ban key shares the slot of every limit of its identifier', async () => {
    const prefix = t.prefix();
    const service = await limiter(prefix);
    await service.consume('bob\nGET /a', { limit: 2, windowMs: HOUR });
    await service.consume('bob', { limit: 2, windowMs: HOUR, algorithm: 'fixed-window' });
    await service.block('bob', 60_000);
    const keys: string[] = [];
    for (const master of await t.masters()) keys.push(...(await master.keys(`${prefix}:*`)));
    expect(keys.sort()).toEqual([`${prefix}:rl:{bob}:ban`, `${prefix}:rl:{bob}:f:3600000:2`, `${prefix}:rl:{bob}:in:GET /a:l:3600000:2`]);
    expect(new Set(keys.map((key) => calculateSlot(key))).size).toBe(1);
  });

  it('every instance honours a ban; a denial by a ban is cached for a second at most', async () => {
    const prefix = t.prefix();
    const [a, b] = [await limiter(prefix, { bans: true, ...DECIDED }), await limiter(prefix, { bans: true, ...DECIDED })];
    const rule = { limit: 5, windowMs: HOUR };
    await a.block('carol', HOUR, 'abuse');
    expect((await b.consume('carol', rule)).ban).toEqual({ reason: 'abuse' });
    // Answered from b's deny cache (no Redis call): for at most a second, not for the ban's hour.
    const cached = await b.consume('carol', rule);
    expect(cached.allowed).toBe(false);
    expect(cached.retryAfterMs).toBeLessThanOrEqual(1_000);
    await a.unblock('carol');
    // a forgot its own cached denials at once; b within its cached second.
    expect(await a.consume('carol', rule)).toMatchObject({ allowed: true });
    let admitted = false;
    while (!admitted) {
      const result = await b.consume('carol', rule);
      admitted = result.allowed;
      if (!admitted) await sleep(Math.max(10, result.retryAfterMs));
    }
    expect(await b.peek('carol', rule)).toMatchObject({ allowed: true, remaining: 3 });
  });

  it('the guard answers a banned client 429 with Retry-After on every route, without counting', async () => {
    const prefix = t.prefix();
    const nest = await app(prefix);
    const service = nest.get(RateLimiterService);
    const server = nest.getHttpServer();
    await request(server).get('/ban/a').expect(200);
    // supertest connects from the loopback address: the guard's identifier is the client IP.
    await service.block('127.0.0.1', 120_000, 'scraping');
    for (const path of ['/ban/a', '/ban/b']) {
      const res = await request(server).get(path).expect(429);
      expect(res.body).toMatchObject({ statusCode: 429, blocked: true, message: 'Blocked: too many requests' });
      expect(res.body.limit).toBeUndefined();
      expect(JSON.stringify(res.body)).not.toContain('scraping');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(100);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(120);
    }
    await service.unblock('127.0.0.1');
    const after = await request(server).get('/ban/a').expect(200);
    expect(after.headers['ratelimit']).toContain('r=98'); // the first request and this one
  });

  it('block(key, 1000) on one instance: 429 on another at once, admitted again once it ends', async () => {
    const prefix = t.prefix();
    const [one, other] = [await app(prefix, { bans: true, ...DECIDED }), await app(prefix, { bans: true, ...DECIDED })];
    await request(other.getHttpServer()).get('/ban/a').expect(200);
    await one.get(RateLimiterService).block('127.0.0.1', 1_000);
    const denied = await request(other.getHttpServer()).get('/ban/a').expect(429);
    expect(denied.body.blocked).toBe(true);
    expect(denied.body.retryAfterMs).toBeLessThanOrEqual(1_000);
    expect(denied.headers['retry-after']).toBe('1');
    await sleep(denied.body.retryAfterMs + 10);
    await request(other.getHttpServer()).get('/ban/a').expect(200);
  });

  it('refuses ban calls when bans are off, and bad arguments, before any Redis call', async () => {
    const off = await limiter(t.prefix(), DECIDED);
    const offMessage =
      'nest-redis-lua: RateLimiterService.block: bans are off, so no limit would check this one: enable them with forRoot({ rateLimit: { bans: true } })';
    await expect(off.block('x', 1_000)).rejects.toEqual(new RateLimitInputError(offMessage));
    await expect(off.unblock('x')).rejects.toThrow(RateLimitInputError);
    await expect(off.isBlocked('x')).rejects.toThrow('RateLimiterService.isBlocked: bans are off');

    const on = await limiter();
    const refusals: Array<[() => Promise<unknown>, string]> = [
      [() => on.block('', 1_000), 'RateLimiterService.block: key must be a non-empty string'],
      [() => on.block('a\nGET /x', 1_000), 'RateLimiterService.block: key must be an identifier without a line break'],
      [() => on.unblock('a\nb'), 'RateLimiterService.unblock: key must be an identifier without a line break'],
      [() => on.block('a', 0), 'RateLimiterService.block: durationMs must be an integer between 1 and 31536000000, got 0'],
      [() => on.block('a', 1.5), 'durationMs must be an integer'],
      [() => on.block('a', 1_000, 'x'.repeat(513)), 'reason must be at most 512 bytes (UTF-8), got 513'],
      [() => on.block('a', 1_000, ''), 'reason must be a non-empty string'],
    ];
    for (const [call, text] of refusals) await expect(call()).rejects.toThrow(text);
    expect(await on.isBlocked('a')).toEqual({ blocked: false, retryAfterMs: 0 });
  });

  it('rejects a rateLimit.bans that is not a boolean at boot', async () => {
    await expect(limiter(t.prefix(), { bans: 'yes' as unknown as boolean })).rejects.toThrow(
      'option "rateLimit.bans" must be true or false',
    );
  });
});
