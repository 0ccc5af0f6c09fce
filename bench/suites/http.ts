/**
 * HTTP level: an Express app on loopback, load from autocannon in child processes (the server process
 * runs alone, as in production; the generators share the machine's cores with it). Routes: unguarded,
 * `@RateLimit` (sliding window, 1000 per minute per user; every run uses fresh users, each well under
 * the limit), @nestjs/throttler with the nest-lab Redis storage. Flood: normal users on the
 * `@RateLimit` route while one user floods the same route and is blocked (429s from the local deny
 * cache), vs the same normal users on the unguarded route while the same flood hits that route; and,
 * as the bound of that ratio, the flood answered 429 by a bare Express middleware before Nest routes it;
 * and the library's own early path: an `earlyDeny` route under the same flood, with RateLimitMiddleware
 * installed ahead of Nest (`RateLimitMiddleware.install`) and, for reference, applied in `configure`.
 */
import {
  Controller,
  Get,
  Injectable,
  Module,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule, Throttle } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { LuaScriptEngine, RateLimit, RateLimitGuard, RateLimitMiddleware, RedisLuaModule, type LuaScript } from '../../lib';
import { runLoads } from '../harness/load';
import { median } from '../harness/measure';
import { ratioCheck, type SuiteResult } from '../harness/report';

const HIGH = 1_000_000;
/** Per user and minute on the @RateLimit route: normal users stay under it (fresh users every run), the flooder does not. */
const USER_LIMIT = 1000;
export const FLOODER: autocannon.Request[] = [{ method: 'GET', headers: { 'x-user': 'flooder' } }];
/** The same flooder, answered 429 by a bare Express middleware before Nest (the reference row). */
const SHORTCUT_FLOODER: autocannon.Request[] = [{ method: 'GET', headers: { 'x-user': 'flooder', 'x-bench-shortcut': '1' } }];
/** The same, answered with the bytes of the library's 429 (headers and JSON body). */
const SAME_BYTES_FLOODER: autocannon.Request[] = [{ method: 'GET', headers: { 'x-user': 'flooder', 'x-bench-shortcut': 'same' } }];

/** The bench's users identify themselves with `x-user` (all load comes from one address). */
const userOf = (ctx: ExecutionContext): string =>
  String(ctx.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-user'] ?? 'anon');

/**
 * The least a Redis-backed guard can do: one script call that does nothing (`return 1`) per request,
 * through the library (same client, same write coalescing). The floor of the `@RateLimit` route.
 */
@Injectable()
class FloorGuard implements CanActivate {
  private readonly script: LuaScript<number>;

  constructor(engine: LuaScriptEngine) {
    this.script = engine.register<number>({ name: 'bench/http-floor', lua: 'return 1', numberOfKeys: 1 });
  }

  canActivate(context: ExecutionContext): Promise<boolean> {
    const user = context.getArgByIndex<{ headers: Record<string, string> }>(0).headers['x-user'];
    return this.script.run([`bench-http-floor:{${user}}`]).then(() => true);
  }
}

@Controller()
class BenchController {
  @Get('floor')
  @UseGuards(FloorGuard)
  floor(): string {
    return 'ok';
  }

  @Get('open')
  open(): string {
    return 'ok';
  }

  @Get('limited')
  @UseGuards(RateLimitGuard)
  @RateLimit({
    limit: USER_LIMIT,
    windowMs: 60_000,
    algorithm: 'sliding-window',
    key: userOf,
  })
  limited(): string {
    return 'ok';
  }

  @Get('early')
  @UseGuards(RateLimitGuard)
  @RateLimit({
    limit: USER_LIMIT,
    windowMs: 60_000,
    algorithm: 'sliding-window',
    key: userOf,
    earlyDeny: true,
  })
  early(): string {
    return 'ok';
  }

  @Get('throttled')
  @UseGuards(ThrottlerGuard)
  @Throttle({ default: { limit: HIGH, ttl: 60_000 } })
  throttled(): string {
    return 'ok';
  }
}

/**
 * The bench's server. `early` says how RateLimitMiddleware runs: installed ahead of Nest (the README's
 * way, `RateLimitMiddleware.install`; after the reference shortcut below, so the bound does not pay
 * for it) or applied by the module's `configure` to the earlyDeny route.
 */
export async function httpApp(
  port: number,
  early: 'install' | 'consumer' = 'install',
): Promise<{ app: INestApplication; url: string; storage: Redis }> {
  const storage = new Redis({ host: '127.0.0.1', port });
  @Module({
    imports: [
      RedisLuaModule.forRoot({ redis: { host: '127.0.0.1', port }, keyPrefix: 'bench-http' }),
      ThrottlerModule.forRoot({ throttlers: [{ limit: HIGH, ttl: 60_000 }], storage: new ThrottlerStorageRedisService(storage) }),
    ],
    controllers: [BenchController],
  })
  class HttpBenchModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      if (early === 'consumer') consumer.apply(RateLimitMiddleware).forRoutes('early');
    }
  }
  const app = await NestFactory.create(HttpBenchModule, { logger: false, abortOnError: false });
  // The least a blocked request can cost in this server: a bare Express middleware that answers 429
  // before Nest routes the request (reference rows; marked requests only): empty, or with the bytes of
  // the library's 429 (its headers and JSON body, built once).
  const body = JSON.stringify({
    statusCode: 429,
    error: 'Too Many Requests',
    message: `Rate limit "default" exceeded: ${USER_LIMIT} per 60000 ms`,
    limit: { name: 'default', limit: USER_LIMIT, windowMs: 60_000, algorithm: 'sliding-window' },
    retryAfterMs: 31_234,
  });
  type Res = { statusCode: number; setHeader(name: string, value: string): void; end(body?: string): void };
  app.use((req: { headers: Record<string, unknown> }, res: Res, next: () => void) => {
    const shortcut = req.headers['x-bench-shortcut'];
    if (shortcut === undefined) return next();
    res.statusCode = 429;
    if (shortcut !== 'same') return res.end();
    res.setHeader('RateLimit-Policy', `"default";q=${USER_LIMIT};w=60`);
    res.setHeader('RateLimit', '"default";r=0;t=32');
    res.setHeader('Retry-After', '32');
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(body);
  });
  if (early === 'install') RateLimitMiddleware.install(app);
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl(), storage };
}

/** 32 connections of a load generator in a child process for `seconds`; resolves with its mean req/s. */
export async function cannon(url: string, seconds: number, requests?: autocannon.Request[]): Promise<number> {
  const [result] = await runLoads([{ url, connections: 32, seconds, requests }]);
  return result.average;
}

/** Two generators (child processes) started at the same moment; resolves with their mean req/s. */
async function cannons(
  seconds: number,
  a: { url: string; requests?: autocannon.Request[] },
  b: { url: string; requests?: autocannon.Request[] },
): Promise<[number, number]> {
  const [ra, rb] = await runLoads([
    { ...a, connections: 32, seconds },
    { ...b, connections: 32, seconds },
  ]);
  return [ra.average, rb.average];
}

export async function httpSuite(port: number, seconds: number, rounds: number): Promise<SuiteResult> {
  const { app, url, storage } = await httpApp(port);
  // The same server with the middleware applied in the module's configure (after Nest's body parsers).
  const second = await httpApp(port, 'consumer');
  let run = 0;
  // 100 users never seen before: each gets well under USER_LIMIT requests in one run.
  const users = (path: string): autocannon.Request[] => {
    run++;
    return Array.from({ length: 100 }, (_, i) => ({ method: 'GET' as const, path, headers: { 'x-user': `r${run}-u${i}` } }));
  };
  /** Normal users on `path` while the flooder hits the same route, from two generators started together. */
  const withFlood = (path: string, flooder = FLOODER, base = url): Promise<[number, number]> =>
    cannons(seconds, { url: `${base}${path}`, requests: users(path) }, { url: `${base}${path}`, requests: flooder });
  /**
   * A flood scenario: the normal users' req/s is its sample; the flooder's own req/s (429s on a
   * guarded route, 200s on the open one) is kept in `flooded` for the table.
   */
  interface Scenario {
    name: string;
    run: () => Promise<number>;
    flooded?: number[];
  }
  const flood = (name: string, path: string, flooder = FLOODER, base = url): Scenario => {
    const flooded: number[] = [];
    return {
      name,
      flooded,
      run: async () => {
        const [served, flooderRps] = await withFlood(path, flooder, base);
        flooded.push(flooderRps);
        return served;
      },
    };
  };
  const scenarios: Scenario[] = [
    { name: 'Express, unguarded route', run: () => cannon(`${url}/open`, seconds, users('/open')) },
    { name: 'nest-redis-lua @RateLimit route', run: () => cannon(`${url}/limited`, seconds, users('/limited')) },
    { name: '@nestjs/throttler + nest-lab storage route', run: () => cannon(`${url}/throttled`, seconds) },
    // Half the connections: one user over its limit, answered 429; the other half: normal users.
    flood('nest-redis-lua @RateLimit route while one user floods it (blocked, 429)', '/limited'),
    flood('Express, unguarded route while the same flood hits it (served)', '/open'),
    {
      name: 'reference: unguarded route behind a guard that only runs `return 1` through the library',
      run: () => cannon(`${url}/floor`, seconds, users('/floor')),
    },
    // The bound: the cheapest possible 429 in this server, before Nest even routes the request.
    flood(
      'reference: @RateLimit route while the flood is answered 429 by a bare Express middleware before Nest',
      '/limited',
      SHORTCUT_FLOODER,
    ),
    flood('nest-redis-lua @RateLimit route with earlyDeny + RateLimitMiddleware.install(app) while one user floods it', '/early'),
    flood(
      'the same, RateLimitMiddleware applied in configure(consumer) instead (same server, a second app)',
      '/early',
      FLOODER,
      second.url,
    ),
    flood(
      "reference: the bare-middleware bound with the library's 429 bytes (its headers and JSON body, built once)",
      '/limited',
      SAME_BYTES_FLOODER,
    ),
  ];
  try {
    await cannon(`${url}/limited`, 1, users('/limited'));
    await cannon(`${url}/throttled`, 1);
    await cannon(`${url}/floor`, 1, users('/floor'));
    // The flooder goes over its limit before the first measured round.
    await cannon(`${url}/limited`, 1, FLOODER);
    await cannon(`${url}/early`, 1, FLOODER);
    await cannon(`${second.url}/early`, 1, FLOODER);
    const samples = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < scenarios.length; k++) {
        const s = scenarios[(round + k) % scenarios.length];
        samples.get(s.name)!.push(await s.run());
      }
    }
    const value = (i: number): number => median(samples.get(scenarios[i].name)!);
    // Ratios are medians of per-round ratios: the two scenarios of a round ran seconds apart, so a
    // slow spell of this shared machine moves both (a ratio of medians mixes different spells).
    const ratio = (i: number, j: number): number => {
      const a = samples.get(scenarios[i].name)!;
      const b = samples.get(scenarios[j].name)!;
      return median(a.map((x, round) => x / b[round]));
    };
    const rows = scenarios.map((s, i) => ({
      name: s.name,
      values: { rps: value(i), flood: s.flooded ? median(s.flooded) : Number.NaN },
    }));
    return {
      id: 'http',
      title: 'HTTP (Express, autocannon on loopback)',
      setup: `load generators in child processes (the server process runs alone), 32 connections each, ${seconds} s × ${rounds} interleaved rounds (ratios: medians of the per-round ratios); req/s of the measured route (normal users: 100 fresh users per run; flood rows: 32 more connections of one user over its limit on the same route)`,
      columns: [
        { key: 'rps', label: 'req/s' },
        { key: 'flood', label: "flooder's own req/s" },
      ],
      rows,
      targets: [
        ratioCheck('@RateLimit route ÷ unguarded route', ratio(1, 0), 0.9),
        {
          ...ratioCheck('floor: a guard that only runs `return 1` through the library ÷ unguarded (reference)', ratio(5, 0), 0.9),
          target: '(≥ 0.9 needs this above 0.9)',
          reference: true,
        },
        ratioCheck('@RateLimit route ÷ unguarded, while one key floods', ratio(3, 4), 0.97),
        {
          ...ratioCheck('bound: the same with the flood answered by a bare middleware before Nest (reference)', ratio(6, 4), 0.97),
          target: '(≥ 0.97 needs ours above this)',
          reference: true,
        },
        ratioCheck('earlyDeny + RateLimitMiddleware.install route ÷ the bare-middleware bound, while one key floods', ratio(7, 6), 0.9),
        {
          ...ratioCheck('the same with the middleware applied in configure(consumer) (reference)', ratio(8, 6), 0.9),
          target: '(install is the fast path)',
          reference: true,
        },
        {
          ...ratioCheck("earlyDeny + install ÷ the bare middleware sending the library's 429 bytes (reference)", ratio(7, 9), 0.9),
          target: '(what the answer itself costs)',
          reference: true,
        },
        { ...ratioCheck('@nestjs/throttler + nest-lab ÷ unguarded (peer, for reference)', ratio(2, 0), 0), target: '—' },
      ],
      chartKey: 'rps',
      chartLabel: 'req/s',
    };
  } finally {
    await second.app.close();
    await second.storage.quit().catch(() => second.storage.disconnect());
    await app.close();
    await storage.quit().catch(() => storage.disconnect());
  }
}
