/**
 * A call that takes a lease but whose reply never arrives (the connection dropped, or a time-out)
 * must not block everybody else for the lease's whole TTL: the caller knows it failed, so it hands
 * the lease back by token, on the same connection, as soon as the connection allows.
 *
 * The reply is lost deterministically: `CLIENT PAUSE ALL` holds the call on a private server past
 * the client's `commandTimeout`, so the call fails on the client ("Command timed out") and runs on the
 * server when the pause ends. A command written afterwards on the same connection (a PING) is
 * answered only after everything written before it ran, so the test awaits that instead of sleeping.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import {
  CacheAsideService,
  KeyBuilder,
  LockService,
  REDIS_LUA_CLIENT,
  REDIS_LUA_KEYS,
  RedisLuaModule,
  RedisLuaUnavailableError,
} from 'nest-redis-lua';
import { RedisServer } from '../harness/redis-server';

const COMMAND_TIMEOUT_MS = 100;

/** Resolves once `check` holds, checking every 10 ms (for states Redis has no event for). */
async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
/** Well past commandTimeout: the call surely timed out on the client before the server runs it. */
const PAUSE_MS = 1_000;

describe('a lease whose reply was lost is handed back at once', () => {
  let server: RedisServer;
  let app: INestApplication;
  let client: Redis;

  beforeAll(async () => {
    server = await RedisServer.start();
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisLuaModule.forRoot({ redis: { host: server.host, port: server.port, commandTimeout: COMMAND_TIMEOUT_MS }, keyPrefix: 'lost' }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    client = app.get<Redis>(REDIS_LUA_CLIENT);
  });
  afterAll(async () => {
    await app?.close();
    await server?.destroy();
  });

  /** Runs `call` while the server holds every command for PAUSE_MS; resolves with its error. */
  async function withLostReply(call: () => Promise<unknown>): Promise<Error> {
    server.cli('client', 'pause', String(PAUSE_MS), 'ALL');
    const err = await call().then(
      () => new Error('the call was answered'),
      (e: Error) => e,
    );
    // A PING written after the call and its compensation, on the same connection, is answered after
    // both ran. Those sent while the pause lasts time out too: send until one is answered.
    for (let attempt = 0; attempt < 100; attempt++) {
      if (
        await client.ping().then(
          () => true,
          () => false,
        )
      )
        return err;
    }
    throw new Error('the paused server never answered again');
  }

  it('LockService.acquire: the caller gets the time-out, and the lock the script took is released by token', async () => {
    const locks = app.get(LockService);
    const err = await withLostReply(() => locks.acquire('job', { ttlMs: 60_000, waitMs: 0 }));
    expect(err).toBeInstanceOf(RedisLuaUnavailableError);
    expect(err).toMatchObject({ reason: 'timeout', cause: expect.objectContaining({ message: 'Command timed out' }) });
    // The acquire ran on the server when the pause ended; its lock is gone already, not held for 60 s.
    expect(await client.exists(locks.lockKey('job'))).toBe(0);
    const next = await locks.tryAcquire('job');
    expect(next).not.toBeNull();
    await next!.release();
  });

  it('Lock.release: a release dropped with its connection (never run) is sent again once the connection is back', async () => {
    // This app's calls wait for their reply (commandTimeout 5 s): only the connection kill loses it.
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ url: server.url, keyPrefix: 'lost' })],
    }).compile();
    const patient = moduleRef.createNestApplication({ logger: false });
    await patient.init();
    try {
      const locks = patient.get(LockService);
      const redis = patient.get<Redis>(REDIS_LUA_CLIENT);
      const lock = await locks.acquire('release-lost', { ttlMs: 60_000, autoExtend: false });
      const id = String(await redis.client('ID'));
      // Scripts wait while writes are paused; CLIENT KILL does not: the release is dropped unexecuted.
      server.cli('client', 'pause', String(PAUSE_MS), 'WRITE');
      const released = lock.release().then(
        () => new Error('the release was answered'),
        (e: Error) => e,
      );
      await waitUntil(() => /cmd=evalsha/.test(server.cli('client', 'list', 'id', id)));
      server.cli('client', 'kill', 'id', id);
      expect((await released).message).toMatch(/max retries per request/);
      // The release is sent again on the new connection and runs when the pause ends; a PING written
      // after it is answered after it.
      await redis.ping();
      expect(await redis.exists(locks.lockKey('release-lost'))).toBe(0);
    } finally {
      await patient.close();
    }
  });

  it('CacheAsideService.getOrLoad: the caller gets the time-out, and the loader lock it took is released, so another caller loads at once', async () => {
    const cache = app.get(CacheAsideService);
    const keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
    let loads = 0;
    const err = await withLostReply(() => cache.getOrLoad('item', 60_000, () => ++loads, { lockTtlMs: 60_000 }));
    expect(err).toBeInstanceOf(RedisLuaUnavailableError);
    expect(err).toMatchObject({ reason: 'timeout', cause: expect.objectContaining({ message: 'Command timed out' }) });
    expect(loads).toBe(0);
    expect(await client.exists(keys.key('cache', ['item'], 'lock'))).toBe(0);
    // waitMs 0: would fail with CacheWaitTimeoutError if the orphaned lock were still held.
    expect(await cache.getOrLoad('item', 60_000, () => ++loads, { waitMs: 0 })).toBe(1);
  });
});
