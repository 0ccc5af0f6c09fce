/**
 * An application without `@opentelemetry/api` (an optional peer): the module loads it only when
 * telemetry could be on, `onEvent` works without it, and `tracing: true` fails boot saying what to
 * install. The package is made unloadable for this file, as it is in an app that never installed it.
 */
import { RateLimiterService, RedisLuaModule, type RedisLuaEvent } from 'nest-redis-lua';
import { Test } from '@nestjs/testing';
import { bootError } from '../harness/boot';

jest.mock('@opentelemetry/api', () => {
  throw new Error("Cannot find module '@opentelemetry/api'");
});

describe('without @opentelemetry/api installed', () => {
  it('tracing: true fails boot, naming the option and the package', async () => {
    const err = await bootError({ url: 'redis://127.0.0.1:1', lazyConnect: true, tracing: true });
    expect(err?.message).toBe(
      'nest-redis-lua: option "tracing": true needs the package @opentelemetry/api, which is not installed: npm install @opentelemetry/api',
    );
  });

  it('onEvent still receives every decision; nothing else is needed', async () => {
    const events: RedisLuaEvent[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ url: 'redis://127.0.0.1:1', lazyConnect: true, onEvent: (e) => events.push(e) })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      expect(await app.get(RateLimiterService).consume('u', { limit: 1, windowMs: 1000 })).toMatchObject({ degraded: true });
      expect(events.map((e) => e.type)).toEqual(['connection.unavailable', 'rate_limit.decision']);
    } finally {
      await app.close();
    }
  });
});
