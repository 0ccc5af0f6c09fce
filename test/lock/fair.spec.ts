/**
 * Fair locks ({ fair: true }): waiters of several processes get the lock in arrival order, a dead
 * waiter's queue entry expires, a waiter that gives up leaves the queue; standalone and cluster.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { Controller, Post } from '@nestjs/common';
import { Lock, LockInputError, LockService, LockTimeoutError, REDIS_LUA_CLIENT, RedisLuaModule, WithLock } from 'nest-redis-lua';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { waitFor } from './lock-test-utils';

jest.setTimeout(120_000);

/** A fair-waiter child process (test/lock/fixtures/fair-waiter.ts), once it has booted. */
async function startChild(
  t: TopologyContext,
  prefix: string,
  listKey: string,
): Promise<{ child: ChildProcessWithoutNullStreams; done: (n: number) => Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['-r', '@swc-node/register', join(__dirname, 'fixtures', 'fair-waiter.ts'), JSON.stringify(t.connection()), prefix, listKey],
    { cwd: join(__dirname, '..', '..'), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  /** Resolves once the child printed `n` lines starting with "done" (or "ready" for n = 0). */
  const lines = (test: (text: string) => boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!test(out)) return;
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
      child.once('exit', (code) => reject(new Error(`the fair-waiter child exited (${code}): ${out}\n${err}`)));
      check();
    });
  await lines((text) => text.includes('ready\n'));
  if (/failed/.test(out)) throw new Error(out);
  return { child, done: (n) => lines((text) => (text.match(/^done /gm) ?? []).length >= n && !/^failed/m.test(text)) };
}

describeTopologies('fair locks', (t) => {
  async function setup(): Promise<{ prefix: string; locks: LockService; redis: Redis | Cluster; queueKey: string }> {
    const prefix = t.prefix();
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })]);
    const locks = app.get(LockService);
    return { prefix, locks, redis: app.get<Redis | Cluster>(REDIS_LUA_CLIENT), queueKey: `${locks.lockKey('fair-queue')}:queue` };
  }

  it('20 waiters queued in a known order across 2 processes acquire in that order', async () => {
    const { prefix, locks, redis, queueKey } = await setup();
    const listKey = `{${prefix}}:order`;
    const { child, done } = await startChild(t, prefix, listKey);
    try {
      const holder = await locks.acquire('fair-queue', { fair: true });
      const local: Array<Promise<unknown>> = [];
      for (let i = 0; i < 20; i++) {
        if (i % 2 === 0) {
          local.push(locks.withLock('fair-queue', () => redis.rpush(listKey, String(i)), { fair: true, waitMs: 120_000 }));
        } else {
          child.stdin.write(`${i}\n`);
        }
        // The order is known once this waiter has its place (the queue has no event to await).
        await waitFor(async () => (await redis.zcard(queueKey)) === i + 1, `waiter ${i} in the queue`, 30_000);
      }
      await holder.release();
      await Promise.all([...local, done(10)]);
      expect(await redis.lrange(listKey, 0, -1)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
      expect(await redis.exists(queueKey)).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('no barging: a free lock is refused to a newcomer while others queue; a waiter killed with -9 stops blocking when its entry expires', async () => {
    const { prefix, locks, redis, queueKey } = await setup();
    const listKey = `{${prefix}}:order`;
    const { child } = await startChild(t, prefix, listKey);
    try {
      const holder = await locks.acquire('fair-queue', { fair: true });
      child.stdin.write('dead\n');
      await waitFor(async () => (await redis.zcard(queueKey)) === 1, 'the child queued', 30_000);
      const next = locks.acquire('fair-queue', { fair: true, waitMs: 60_000 });
      await waitFor(async () => (await redis.zcard(queueKey)) === 2, 'the second waiter queued', 30_000);
      child.kill('SIGKILL');
      await holder.release();
      // The lock is free, but the dead waiter's entry is the head until it expires (5 s without renewal).
      expect(await redis.exists(locks.lockKey('fair-queue'))).toBe(0);
      expect(await locks.tryAcquire('fair-queue', { fair: true })).toBeNull();
      const lock = await next;
      expect(lock).toBeInstanceOf(Lock);
      expect(await redis.zcard(queueKey)).toBe(0);
      await lock.release();
      expect(await redis.lrange(listKey, 0, -1)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a waiter that gives up (waitMs, abort) leaves the queue and the next one gets the lock', async () => {
    const { locks, redis, queueKey } = await setup();
    const holder = await locks.acquire('fair-queue', { fair: true });
    const gaveUp = locks.acquire('fair-queue', { fair: true, waitMs: 300 });
    await waitFor(async () => (await redis.zcard(queueKey)) === 1, 'the first waiter queued');
    const controller = new AbortController();
    const aborted = locks.acquire('fair-queue', { fair: true, waitMs: 60_000, signal: controller.signal });
    await waitFor(async () => (await redis.zcard(queueKey)) === 2, 'the second waiter queued');
    const last = locks.acquire('fair-queue', { fair: true, waitMs: 60_000 });
    await waitFor(async () => (await redis.zcard(queueKey)) === 3, 'the third waiter queued');
    await expect(gaveUp).rejects.toBeInstanceOf(LockTimeoutError);
    controller.abort(new Error('client gone'));
    await expect(aborted).rejects.toThrow('client gone');
    await waitFor(async () => (await redis.zcard(queueKey)) === 1, 'the two left the queue');
    await holder.release();
    const lock = await last;
    expect(lock.held).toBe(true);
    await lock.release();
  });

  it('validates fair: a boolean, not with mode read (acquire and @WithLock)', async () => {
    const { locks } = await setup();
    await expect(locks.acquire('r', { fair: 'yes' as unknown as boolean })).rejects.toThrow(
      'nest-redis-lua: LockService.acquire: option "fair" must be true or false, got "yes"',
    );
    const err = (await locks.acquire('r', { fair: true, mode: 'read' }).catch((e: unknown) => e)) as LockInputError;
    expect(err).toBeInstanceOf(LockInputError);
    expect(err.message).toBe(
      'nest-redis-lua: LockService.acquire: option "fair" takes write locks: it cannot be combined with mode \'read\'',
    );
    expect(() => {
      @Controller()
      class ReadFair {
        @Post()
        @WithLock('r', { fair: true, mode: 'read' })
        route(): void {}
      }
      return ReadFair;
    }).toThrow(/option "fair" takes write locks/);
  });
});
