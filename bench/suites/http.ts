/**
 * HTTP level: an Express app on loopback, load from autocannon in this process. Routes: unguarded,
 * `@RateLimit` (sliding log, limit high enough to admit every request), @nestjs/throttler with the
 * nest-lab Redis storage; and a flood: while one client key floods its route and is blocked, the
 * `@RateLimit` route's throughput for everyone else vs the unguarded route.
 */
import { Controller, Get, Module, UseGuards, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule, Throttle } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { RateLimit, RateLimitGuard, RedisLuaModule } from '../../lib';
import { median } from '../harness/measure';
import { ratioCheck, type SuiteResult } from '../harness/report';

const HIGH = 1_000_000;

@Controller()
class BenchController {
  @Get('open')
  open(): string {
    return 'ok';
  }

  @Get('limited')
  @UseGuards(RateLimitGuard)
  @RateLimit({ limit: HIGH, windowMs: 60_000, algorithm: 'sliding-window', key: (ctx) => String(ctx.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-user'] ?? 'anon') })
  limited(): string {
    return 'ok';
  }

  @Get('flooded')
  @UseGuards(RateLimitGuard)
  @RateLimit({ limit: 10, windowMs: 60_000, key: () => 'flooder' })
  flooded(): string {
    return 'ok';
  }

  @Get('throttled')
  @UseGuards(ThrottlerGuard)
  @Throttle({ default: { limit: HIGH, ttl: 60_000 } })
  throttled(): string {
    return 'ok';
  }
}

async function httpApp(port: number): Promise<{ app: INestApplication; url: string; storage: Redis }> {
  const storage = new Redis({ host: '127.0.0.1', port });
  @Module({
    imports: [
      RedisLuaModule.forRoot({ redis: { host: '127.0.0.1', port }, keyPrefix: 'bench-http' }),
      ThrottlerModule.forRoot({ throttlers: [{ limit: HIGH, ttl: 60_000 }], storage: new ThrottlerStorageRedisService(storage) }),
    ],
    controllers: [BenchController],
  })
  class HttpBenchModule {}
  const app = await NestFactory.create(HttpBenchModule, { logger: false, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl(), storage };
}

function cannon(url: string, seconds: number, requests?: autocannon.Request[]): Promise<number> {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: 32, duration: seconds, requests }, (err, result) => (err ? reject(err) : resolve(result.requests.average)));
  });
}

export async function httpSuite(port: number, seconds: number, rounds: number): Promise<SuiteResult> {
  const { app, url, storage } = await httpApp(port);
  const users = (path: string): autocannon.Request[] =>
    Array.from({ length: 100 }, (_, i) => ({ method: 'GET' as const, path, headers: { 'x-user': `u${i}` } }));
  const scenarios: Array<{ name: string; run: () => Promise<number> }> = [
    { name: 'Express, unguarded route', run: () => cannon(`${url}/open`, seconds) },
    { name: 'nest-redis-lua @RateLimit route', run: () => cannon(`${url}/limited`, seconds, users('/limited')) },
    { name: '@nestjs/throttler + nest-lab storage route', run: () => cannon(`${url}/throttled`, seconds) },
    {
      name: 'nest-redis-lua @RateLimit route while one key floods (blocked)',
      run: async () => {
        // Half the connections flood a key that is over its limit (429s); the rest are served.
        const [served] = await Promise.all([
          cannon(`${url}/limited`, seconds, users('/limited')),
          cannon(`${url}/flooded`, seconds),
        ]);
        return served;
      },
    },
    {
      name: 'Express, unguarded route while the same flood runs',
      run: async () => {
        const [served] = await Promise.all([cannon(`${url}/open`, seconds), cannon(`${url}/flooded`, seconds)]);
        return served;
      },
    },
  ];
  try {
    await cannon(`${url}/limited`, 1, users('/limited'));
    await cannon(`${url}/throttled`, 1);
    const samples = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < scenarios.length; k++) {
        const s = scenarios[(round + k) % scenarios.length];
        samples.get(s.name)!.push(await s.run());
      }
    }
    const value = (i: number): number => median(samples.get(scenarios[i].name)!);
    const rows = scenarios.map((s, i) => ({ name: s.name, values: { rps: value(i) } }));
    return {
      id: 'http',
      title: 'HTTP (Express, autocannon on loopback)',
      setup: `32 connections per load generator, ${seconds} s × ${rounds} interleaved rounds; req/s of the measured route (flood rows: the other half of the load floods a key that is over its limit)`,
      columns: [{ key: 'rps', label: 'req/s' }],
      rows,
      targets: [
        ratioCheck('@RateLimit route ÷ unguarded route', value(1) / value(0), 0.9),
        ratioCheck('@RateLimit route ÷ unguarded, while one key floods', value(3) / value(4), 0.97),
        { ...ratioCheck('@nestjs/throttler + nest-lab ÷ unguarded (peer, for reference)', value(2) / value(0), 0), target: '—' },
      ],
      chartKey: 'rps',
      chartLabel: 'req/s',
    };
  } finally {
    await app.close();
    await storage.quit().catch(() => storage.disconnect());
  }
}
