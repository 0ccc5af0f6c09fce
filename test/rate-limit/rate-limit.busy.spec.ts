/**
 * A Redis busy running another script answers BUSY: that is the server's state, not a fault of our
 * script, so the rate limiter decides by its fail mode (and the guard never answers 500).
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { LuaScriptError, RateLimiterService, RateLimitUnavailableError, RedisLuaModule } from 'nest-redis-lua';
import { RedisServer } from '../harness/redis-server';

/** Spins inside Redis for ARGV[1] ms (reads only, so SCRIPT KILL can stop it). */
const SPIN = `
local t = redis.call('TIME')
local start = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
while true do
  local n = redis.call('TIME')
  if tonumber(n[1]) * 1000 + tonumber(n[2]) / 1000 - start >= tonumber(ARGV[1]) then return 1 end
end`;

describe('rate limiter when Redis answers BUSY', () => {
  let server: RedisServer;
  let app: INestApplication;
  let spinner: Redis;

  beforeAll(async () => {
    server = await RedisServer.start({ args: ['--busy-reply-threshold', '20'] });
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ url: server.url, keyPrefix: 'busy', rateLimit: { timeoutMs: 2_000 } })],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    spinner = new Redis(server.port, '127.0.0.1');
  });
  afterAll(async () => {
    spinner?.disconnect();
    await app?.close();
    await server?.destroy();
  });

  it('decides by failMode (open: admitted and degraded; closed: RateLimitUnavailableError), not as a script error', async () => {
    const limiter = app.get(RateLimiterService);
    const rule = { limit: 5, windowMs: 60_000 };
    expect((await limiter.consume('u', rule)).allowed).toBe(true);

    // Spins far longer than the checks below take, even on a loaded machine; killed when they are done.
    let spun = false;
    const spinning = spinner.eval(SPIN, 0, 20_000).then(
      (reply) => ((spun = true), reply),
      (err: Error) => ((spun = true), err),
    );
    // Wait until the server is inside the script (past busy-reply-threshold): another client gets BUSY.
    // No ready check (its INFO would be answered BUSY and reported as an error event).
    const probe = new Redis({ port: server.port, host: '127.0.0.1', enableReadyCheck: false });
    probe.on('error', () => undefined);
    try {
      let busy = false;
      while (!busy && !spun) {
        const reply = await probe.ping().catch((err: Error) => err);
        busy = reply instanceof Error && reply.message.startsWith('BUSY');
      }
      expect(busy).toBe(true);
      const open = await limiter.consume('u', rule);
      expect(open).toMatchObject({ allowed: true, degraded: true });
      const closed = await limiter.consume('u', rule, { failMode: 'closed' }).catch((err: unknown) => err);
      expect(closed).toBeInstanceOf(RateLimitUnavailableError);
      expect(closed).not.toBeInstanceOf(LuaScriptError);
      // The spinning script only reads, so SCRIPT KILL stops it.
      expect(await probe.script('KILL')).toBe('OK');
    } finally {
      probe.disconnect();
    }
    expect(String(await spinning)).toMatch(/killed/i);
    expect(await limiter.consume('u', rule)).toMatchObject({ allowed: true, remaining: 3 });
  });
});
