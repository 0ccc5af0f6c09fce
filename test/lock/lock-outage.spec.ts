import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import { LockLostError, LockService, REDIS_LUA_CLIENT, RedisLuaModule } from 'nest-redis-lua';
import { RedisServer } from '../harness/redis-server';
import { deferred } from './lock-test-utils';

// A private server the test can freeze (SIGSTOP): the watchdog's behaviour does not depend on the
// topology, only on renewals going unanswered.
describe('Lock watchdog when Redis stops answering', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server.destroy();
  });

  it('aborts the signal with LockLostError at expiresAt, without an unhandled rejection', async () => {
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ url: server.url, keyPrefix: 'outage' })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.init();
      const locks = app.get(LockService);
      // Renewals every 1 s, the lease 3 s: only a 2 s stall of this process (not of Redis) would let
      // the lease run out before a renewal was sent, which is another loss reason (tested in lock.service.spec.ts).
      const lock = await locks.acquire('frozen', { ttlMs: 3_000 });
      const aborted = deferred<unknown>();
      lock.signal.addEventListener('abort', () => aborted.resolve(lock.signal.reason));
      server.pause();
      const reason = await aborted.promise;
      // Never later than the lease could last in Redis, never much earlier.
      expect(Date.now()).toBeGreaterThanOrEqual(lock.expiresAt - 2);
      expect(reason).toBeInstanceOf(LockLostError);
      expect((reason as LockLostError).message).toMatch(/frozen.*could not be renewed before it expired/);
      server.resume();
      // Whether the lease ran out in Redis a few ms before or after the resume, release settles
      // and leaves no lock behind.
      await expect(lock.release()).resolves.toEqual(expect.any(Boolean));
      expect(await app.get<Redis>(REDIS_LUA_CLIENT).exists(locks.lockKey('frozen'))).toBe(0);
      await new Promise((r) => setImmediate(r));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      server.resume();
      await app.close();
      process.off('unhandledRejection', unhandled);
    }
  });
});
