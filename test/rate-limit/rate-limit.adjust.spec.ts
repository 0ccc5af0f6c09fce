/**
 * Rate limiting v2, first part: `blockMs` penalties, `refund`, and reservations (`reserve` →
 * `commit(actualCost)` / `cancel()`), for every algorithm and for mixed rules, on standalone and cluster.
 */
import { Controller, Get, type INestApplication, Logger, Post, Query, UnauthorizedException } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { request as httpRequest } from 'node:http';
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
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

const ALGORITHMS: RateLimitAlgorithm[] = ['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window'];
const HOUR = 3_600_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A slow call under load stays a decision (never a fail-open admission); `rateLimit` may override it. */
async function limiter(t: TopologyContext, rateLimit: RateLimitModuleOptions = { localCacheSize: 0 }): Promise<RateLimiterService> {
  const options: RateLimitModuleOptions = { ...DECIDED, ...rateLimit };
  const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), rateLimit: options })]);
  return app.get(RateLimiterService);
}

/** Consumes `n` single hits one after the other; resolves with how many were admitted. */
async function admitted(service: RateLimiterService, key: string, rules: RateLimitRule | RateLimitRule[], n: number): Promise<number> {
  let count = 0;
  for (let i = 0; i < n; i++) if ((await service.consume(key, rules)).allowed) count++;
  return count;
}

@Controller()
class PenaltyController {
  @Get('penalty')
  @RateLimit({ limit: 1, windowMs: 1_000, blockMs: 60_000, key: () => 'one-client' })
  penalty(): string {
    return 'ok';
  }
}

const user = (ctx: Parameters<NonNullable<import('nest-redis-lua').RateLimitRouteOptions['key']>>[0]): string =>
  String(ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-user'] ?? 'anonymous');

/** Lets the test hold a request inside its handler. */
let gate: Promise<void> = Promise.resolve();

@Controller()
class CountingController {
  /** Wrong passwords count, right ones do not. */
  @Post('login')
  @RateLimit({ limit: 3, windowMs: HOUR, countOnly: 'failed', key: user })
  login(@Query('password') password: string): string {
    if (password !== 'right') throw new UnauthorizedException('wrong password');
    return 'welcome';
  }

  /** Only successful exports count. */
  @Post('export')
  @RateLimit({ limit: 2, windowMs: HOUR, countOnly: 'succeeded', key: user })
  export(@Query('fail') fail?: string): string {
    if (fail) throw new UnauthorizedException('not allowed');
    return 'exported';
  }

  @Get('slow')
  @RateLimit({ limit: 3, windowMs: HOUR, countOnly: 'failed', key: user })
  async slow(): Promise<string> {
    await gate;
    return 'done';
  }

  @Get('skippable')
  @RateLimit({
    limit: 1,
    windowMs: HOUR,
    key: user,
    skip: async (ctx) => ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-internal'] === '1',
  })
  skippable(): string {
    return 'ok';
  }

  @Get('badly-skipped')
  @RateLimit({ limit: 1, windowMs: HOUR, key: user, skip: () => 'yes' as unknown as boolean })
  badlySkipped(): string {
    return 'ok';
  }
}

async function countingApp(t: TopologyContext, platform: 'express' | 'fastify'): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      RedisLuaModule.forRoot({
        ...t.connection(),
        keyPrefix: t.prefix(),
        rateLimit: { localCacheSize: 0, ...DECIDED },
      }),
    ],
    controllers: [CountingController],
  }).compile();
  const app =
    platform === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter(), { logger: false })
      : moduleRef.createNestApplication({ logger: false });
  await app.init();
  if (platform === 'fastify') await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
  return app;
}

describeTopologies('rate limiting: blockMs, refund, reserve', (t) => {
  describe('blockMs', () => {
    it.each(ALGORITHMS)(
      '%s: a denied identifier stays denied for blockMs from the denial, after its window would admit',
      async (algorithm) => {
        const service = await limiter(t);
        const rule: RateLimitRule = { limit: 2, windowMs: 1_000, algorithm, blockMs: 60_000 };
        expect(await admitted(service, 'blocked', rule, 2)).toBe(2);
        const denial = await service.consume('blocked', rule);
        expect(denial).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 60_000 });
        expect(denial.resetMs).toBeGreaterThanOrEqual(60_000);
        // The window is over (its own retry-after passed), the block is not.
        await sleep(1_100);
        const later = await service.consume('blocked', rule);
        expect(later.allowed).toBe(false);
        expect(later.retryAfterMs).toBeGreaterThan(1_000);
        expect(later.retryAfterMs).toBeLessThan(60_000);
        // A peek sees the block; another identifier is not affected.
        expect((await service.peek('blocked', rule)).allowed).toBe(false);
        expect((await service.consume('other', rule)).allowed).toBe(true);
        // reset lifts it.
        await service.reset('blocked', rule);
        expect((await service.consume('blocked', rule)).allowed).toBe(true);
      },
    );

    it('a short block ends at its retry-after; a peek over the limit sets none', async () => {
      const service = await limiter(t);
      const rule: RateLimitRule = { limit: 1, windowMs: 200, algorithm: 'fixed-window', blockMs: 600 };
      expect((await service.consume('short', rule)).allowed).toBe(true);
      const denial = await service.consume('short', rule);
      expect(denial.retryAfterMs).toBe(600);
      await sleep(denial.retryAfterMs + 20);
      expect((await service.consume('short', rule)).allowed).toBe(true);

      expect((await service.peek('short', rule)).allowed).toBe(false);
      await sleep((await service.peek('short', rule)).retryAfterMs + 20);
      // Nothing blocked it: the window's own end admits again.
      expect((await service.consume('short', rule)).allowed).toBe(true);
    });

    it('with several rules, only the rule with blockMs blocks, and the result names it', async () => {
      const service = await limiter(t);
      const rules: RateLimitRule[] = [
        { limit: 1, windowMs: 1_000, algorithm: 'token-bucket', name: 'burst', blockMs: 30_000 },
        { limit: 100, windowMs: HOUR, algorithm: 'sliding-log', name: 'hourly' },
      ];
      expect((await service.consume('two', rules)).allowed).toBe(true);
      const denial = await service.consume('two', rules);
      expect(denial).toMatchObject({ allowed: false, retryAfterMs: 30_000, rule: { name: 'burst' } });
      // Nothing was recorded by the denied hits in the other rule.
      expect((await service.peek('two', [rules[1]])).remaining).toBe(99);
    });

    it('the local deny cache keeps the denial for the whole block', async () => {
      const service = await limiter(t, {});
      const rule: RateLimitRule = { limit: 1, windowMs: 500, blockMs: 60_000 };
      await service.consume('cached', rule);
      expect((await service.consume('cached', rule)).retryAfterMs).toBe(60_000);
      await sleep(600);
      const cached = await service.consume('cached', rule);
      expect(cached.allowed).toBe(false);
      expect(cached.retryAfterMs).toBeGreaterThan(50_000);
    });

    it('@RateLimit({ blockMs }): the 429 and Retry-After carry the block', async () => {
      const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })], { controllers: [PenaltyController] });
      const http = app.getHttpServer();
      expect((await request(http).get('/penalty')).status).toBe(200);
      const denied = await request(http).get('/penalty');
      expect(denied.status).toBe(429);
      expect(denied.headers['retry-after']).toBe('60');
      expect(denied.body.retryAfterMs).toBe(60_000);
    });
  });

  describe('refund', () => {
    it.each(ALGORITHMS)('%s: gives units back, never below empty', async (algorithm) => {
      const service = await limiter(t);
      const rule: RateLimitRule = { limit: 3, windowMs: HOUR, algorithm };
      expect(await admitted(service, 'refunded', rule, 4)).toBe(3);
      await service.refund('refunded', rule, 2);
      expect(await admitted(service, 'refunded', rule, 3)).toBe(2);
      await service.refund('refunded', rule);
      expect(await admitted(service, 'refunded', rule, 2)).toBe(1);

      // A refund larger than what was taken, or on a key never used, empties the rule and no more.
      await service.refund('refunded', rule, 1_000);
      await service.refund('never-used', rule, 5);
      expect(await admitted(service, 'refunded', rule, 5)).toBe(3);
      expect(await admitted(service, 'never-used', rule, 5)).toBe(3);
    });

    it('gives back to every rule of a mixed call, and drops the cached denial', async () => {
      const service = await limiter(t, {});
      const rules: RateLimitRule[] = [
        { limit: 2, windowMs: HOUR, algorithm: 'fixed-window' },
        { limit: 3, windowMs: HOUR, algorithm: 'sliding-log' },
      ];
      expect(await admitted(service, 'mixed', rules, 3)).toBe(2);
      await service.refund('mixed', rules);
      // The deny cache held the denial for an hour: the refund must reach Redis's decision again.
      const after = await service.consume('mixed', rules);
      expect(after.allowed).toBe(true);
      expect((await service.peek('mixed', [rules[1]])).remaining).toBe(1);
    });

    it('checks its arguments before any Redis call', async () => {
      const service = await limiter(t);
      const rule = { limit: 3, windowMs: HOUR };
      await expect(service.refund('k', rule, 0)).rejects.toThrow(
        new RateLimitInputError('nest-redis-lua: RateLimiterService.refund: cost must be an integer between 1 and 1000000, got 0'),
      );
      await expect(service.refund('', rule)).rejects.toThrow(RateLimitInputError);
      await expect(service.refund('k', { limit: 3, windowMs: HOUR, blockMs: -1 })).rejects.toThrow(/option "blockMs" must be an integer/);
    });
  });

  describe('reserve', () => {
    it.each(ALGORITHMS)(
      '%s: commit(4) of a reservation of 10 leaves 4 used; cancel leaves 0; a larger commit charges more',
      async (algorithm) => {
        const service = await limiter(t);
        const rule: RateLimitRule = { limit: 100, windowMs: HOUR, algorithm };
        const reservation = await service.reserve('tokens', rule, { cost: 10 });
        expect(reservation).toMatchObject({ allowed: true, cost: 10, result: { remaining: 90 } });
        await reservation.commit(4);
        expect((await service.peek('tokens', rule)).remaining).toBe(96);

        const cancelled = await service.reserve('tokens', rule, { cost: 10 });
        await cancelled.cancel();
        expect((await service.peek('tokens', rule)).remaining).toBe(96);

        const more = await service.reserve('tokens', rule, { cost: 10 });
        await more.commit(15);
        expect((await service.peek('tokens', rule)).remaining).toBe(81);

        const same = await service.reserve('tokens', rule, { cost: 1 });
        await same.commit();
        expect((await service.peek('tokens', rule)).remaining).toBe(80);
      },
    );

    it('an extra charge uses a rule up, never overdraws it', async () => {
      const service = await limiter(t);
      const rule: RateLimitRule = { limit: 12, windowMs: HOUR, algorithm: 'sliding-log' };
      await (await service.reserve('capped', rule, { cost: 10 })).commit(50);
      expect((await service.peek('capped', rule)).remaining).toBe(0);
      await service.refund('capped', rule);
      expect(await admitted(service, 'capped', rule, 3)).toBe(1);
    });

    it('a denied reservation took nothing and cannot be settled; a settled one cannot be settled again', async () => {
      const service = await limiter(t);
      const rule: RateLimitRule = { limit: 5, windowMs: HOUR };
      const first = await service.reserve('once', rule, { cost: 5 });
      const denied = await service.reserve('once', rule, { cost: 1 });
      expect(denied.allowed).toBe(false);
      await expect(denied.commit()).rejects.toThrow(
        new RateLimitInputError(
          'nest-redis-lua: RateLimitReservation.commit: the reservation was denied: nothing was taken, nothing to settle',
        ),
      );
      await expect(denied.cancel()).rejects.toThrow(/RateLimitReservation\.cancel: the reservation was denied/);
      await first.commit(2);
      await expect(first.cancel()).rejects.toThrow(/RateLimitReservation\.cancel: the reservation is already settled/);
      await expect(first.commit(1)).rejects.toThrow(/already settled/);
      expect((await service.peek('once', rule)).remaining).toBe(3);
      const next = await service.reserve('once', rule);
      await expect(next.commit(-1)).rejects.toThrow(
        /RateLimitReservation\.commit: actualCost must be an integer between 0 and 1000000, got -1/,
      );
      // A rejected commit did not settle it.
      await next.cancel();
      expect((await service.peek('once', rule)).remaining).toBe(3);
    });

    it('reserve names itself in its errors', async () => {
      const service = await limiter(t);
      await expect(service.reserve('k', { limit: 3, windowMs: HOUR }, { cost: 4 })).rejects.toThrow(
        /RateLimiterService\.reserve: cost must be an integer between 1 and the smallest limit \(3\), got 4/,
      );
    });
  });

  describe('@RateLimit countOnly and skip', () => {
    let app: INestApplication | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });

    it.each(['express', 'fastify'] as const)(
      "%s: countOnly 'failed' (limit 3): 10 right passwords all pass; 3 wrong ones, then the 4th attempt is 429",
      async (platform) => {
        app = await countingApp(t, platform);
        const http = app.getHttpServer();
        const login = async (password: string): Promise<number> =>
          (await request(http).post(`/login?password=${password}`).set('x-user', 'ann')).status;
        for (let i = 0; i < 10; i++) expect(await login('right')).toBe(201);
        expect([await login('wrong'), await login('wrong'), await login('wrong')]).toEqual([401, 401, 401]);
        expect(await login('right')).toBe(429);
        // Another user is not affected.
        expect((await request(http).post('/login?password=right').set('x-user', 'bob')).status).toBe(201);
      },
    );

    it.each(['express', 'fastify'] as const)("%s: countOnly 'succeeded' (limit 2): failures do not count", async (platform) => {
      app = await countingApp(t, platform);
      const http = app.getHttpServer();
      const run = async (fail: boolean): Promise<number> =>
        (
          await request(http)
            .post(fail ? '/export?fail=1' : '/export')
            .set('x-user', 'cy')
        ).status;
      expect([await run(true), await run(true), await run(true), await run(false), await run(true), await run(false)]).toEqual([
        401, 401, 401, 201, 401, 201,
      ]);
      expect(await run(false)).toBe(429);
    });

    it('a client that disconnects before the response is given back', async () => {
      app = await countingApp(t, 'express');
      const limiter = app.get(RateLimiterService);
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      const refunded = new Promise<void>((resolve) => {
        const refund = limiter.refund.bind(limiter);
        jest.spyOn(limiter, 'refund').mockImplementation((...args) => refund(...args).finally(resolve));
      });
      const server = app.getHttpServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      const entered = new Promise<void>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/slow', headers: { 'x-user': 'dee' } });
        req.on('error', () => undefined);
        req.end();
        // The guard has counted it once the request is in the handler, waiting on the gate.
        const poll = (): void => {
          void limiter.peek('dee\nGET /slow', { limit: 3, windowMs: HOUR }).then((r) => {
            if (r.remaining === 2) {
              req.destroy();
              resolve();
            } else setImmediate(poll);
          });
        };
        poll();
      });
      await entered;
      await refunded;
      release();
      expect((await limiter.peek('dee\nGET /slow', { limit: 3, windowMs: HOUR })).remaining).toBe(3);
    });

    it('skip exempts a request before anything is recorded; otherwise the route counts', async () => {
      app = await countingApp(t, 'express');
      const http = app.getHttpServer();
      for (let i = 0; i < 3; i++) {
        const internal = await request(http).get('/skippable').set('x-user', 'eve').set('x-internal', '1');
        expect(internal.status).toBe(200);
        expect(internal.headers['ratelimit']).toBeUndefined();
      }
      expect((await request(http).get('/skippable').set('x-user', 'eve')).status).toBe(200);
      expect((await request(http).get('/skippable').set('x-user', 'eve')).status).toBe(429);
      // A skip that answers neither true nor false fails the request (never a silent guess).
      const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        expect((await request(http).get('/badly-skipped').set('x-user', 'eve')).status).toBe(500);
        expect(errors.mock.calls.flat().join('\n')).toMatch(
          /@RateLimit on CountingController\.badlySkipped: option "skip" must return true or false, got "yes"/,
        );
      } finally {
        errors.mockRestore();
      }
    });

    it('countOnly, skip and blockMs are checked when the class is declared (countOnly outside HTTP: test/module/boot-checks)', () => {
      const declare = (options: import('nest-redis-lua').RateLimitRouteOptions) => {
        class Bad {
          handler(): void {}
        }
        RateLimit(options)(Bad.prototype, 'handler', Object.getOwnPropertyDescriptor(Bad.prototype, 'handler')!);
      };
      expect(() => declare({ limit: 1, windowMs: 1000, countOnly: 'errors' as 'failed' })).toThrow(
        /@RateLimit on Bad\.handler: option "countOnly" must be one of failed, succeeded, got "errors"/,
      );
      expect(() => declare({ limit: 1, windowMs: 1000, skip: true as unknown as () => boolean })).toThrow(
        /@RateLimit on Bad\.handler: option "skip" must be a function of the execution context/,
      );
      expect(() => declare({ limit: 1, windowMs: 1000, blockMs: 0 })).toThrow(/option "blockMs" must be an integer between 1 and/);
    });
  });
});
