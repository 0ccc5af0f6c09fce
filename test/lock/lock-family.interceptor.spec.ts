/**
 * The lock family's route decorators: @WithSemaphore, @WithLock(resource, { mode: 'read' }) and
 * @WithLock([...]) over two app instances; standalone and cluster.
 */
import type { AddressInfo } from 'node:net';
import { Body, Controller, Get, type INestApplication, Param, Post } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { CurrentLocks, CurrentPermit, InjectRedis, Lock, MultiLock, RedisLuaModule, WithLock, WithSemaphore } from 'nest-redis-lua';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { deferred, delay } from './lock-test-utils';

class Hooks {
  prefix = '';
  entered = 0;
  allEntered = deferred();
  expected = 2;
  open = deferred();
}

function makeController(hooks: Hooks) {
  @Controller()
  class FamilyController {
    constructor(@InjectRedis() private readonly redis: Redis | Cluster) {}

    @Post('render')
    @WithSemaphore('gpu', { permits: 2, waitMs: 0, ttlMs: 5_000 })
    async render(@CurrentPermit() permit: Lock): Promise<{ fence: number }> {
      hooks.entered += 1;
      if (hooks.entered === hooks.expected) hooks.allEntered.resolve();
      await hooks.open.promise;
      return { fence: permit.fence };
    }

    @Get('docs/:id')
    @WithLock('doc:{params.id}', { mode: 'read', waitMs: 0 })
    async read(): Promise<string> {
      hooks.entered += 1;
      if (hooks.entered === hooks.expected) hooks.allEntered.resolve();
      await hooks.open.promise;
      return 'read';
    }

    @Post('docs/:id')
    @WithLock('doc:{params.id}', { waitMs: 0 })
    write(): string {
      return 'written';
    }

    @Post('transfers')
    @WithLock(['account:{body.from}', 'account:{body.to}'], { waitMs: 300_000 })
    async transfer(@Body() body: { from: string; to: string }, @CurrentLocks() locks: MultiLock): Promise<{ resources: string[] }> {
      const key = (account: string): string => `{${hooks.prefix}}:balance:${account}`;
      const [from, to] = await Promise.all([this.redis.get(key(body.from)), this.redis.get(key(body.to))]);
      await delay(1);
      if (body.from !== body.to) {
        await this.redis.set(key(body.from), String(Number(from ?? 0) - 1));
        await this.redis.set(key(body.to), String(Number(to ?? 0) + 1));
      }
      return { resources: locks.resources };
    }

    @Get('balances/:account')
    async balance(@Param('account') account: string): Promise<number> {
      return Number((await this.redis.get(`{${hooks.prefix}}:balance:${account}`)) ?? 0);
    }
  }
  return FamilyController;
}

async function twoApps(t: TopologyContext, hooks: Hooks): Promise<INestApplication[]> {
  const prefix = t.prefix();
  hooks.prefix = prefix;
  const start = async (): Promise<INestApplication> => {
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })], { controllers: [makeController(hooks)] });
    await app.listen(0, '127.0.0.1');
    return app;
  };
  return [await start(), await start()];
}

function url(app: INestApplication, path: string): string {
  return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}${path}`;
}

describeTopologies('lock family routes', (t) => {
  it('@WithSemaphore: 2 permits over 2 instances, a third request is a 409 with Retry-After; a freed permit lets the next in', async () => {
    const hooks = new Hooks();
    const [a, b] = await twoApps(t, hooks);
    const holders = [fetch(url(a, '/render'), { method: 'POST' }), fetch(url(b, '/render'), { method: 'POST' })];
    await hooks.allEntered.promise;
    const refused = await fetch(url(b, '/render'), { method: 'POST' });
    expect(refused.status).toBe(409);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(5);
    expect(await refused.json()).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'Every permit of this resource is in use by other requests; retry later',
      retryAfter,
    });
    hooks.open.resolve();
    const done = await Promise.all(holders);
    expect(done.map((res) => res.status)).toEqual([201, 201]);
    const fences = await Promise.all(done.map(async (res) => ((await res.json()) as { fence: number }).fence));
    expect(new Set(fences).size).toBe(2);
    expect((await fetch(url(a, '/render'), { method: 'POST' })).status).toBe(201);
  });

  it("@WithLock mode 'read': readers of two instances share the resource, a writer is refused while they read", async () => {
    const hooks = new Hooks();
    const [a, b] = await twoApps(t, hooks);
    const readers = [fetch(url(a, '/docs/7')), fetch(url(b, '/docs/7'))];
    await hooks.allEntered.promise;
    expect((await fetch(url(a, '/docs/7'), { method: 'POST' })).status).toBe(409);
    hooks.open.resolve();
    expect((await Promise.all(readers)).map((res) => res.status)).toEqual([200, 200]);
    expect((await fetch(url(b, '/docs/7'), { method: 'POST' })).status).toBe(201);
  });

  // Any two transfers share an account, so they run one at a time: slow on a loaded machine, hence
  // the long wait and test timeout (no time is asserted).
  it('@WithLock([...]): 30 concurrent transfers both ways between 3 accounts over 2 instances lose no update', async () => {
    const hooks = new Hooks();
    const apps = await twoApps(t, hooks);
    const accounts = ['ann', 'bob', 'cy'];
    const pairs = Array.from({ length: 30 }, (_, i) => ({ from: accounts[i % 3], to: accounts[(i + 1 + (i % 2)) % 3] }));
    const answers = await Promise.all(
      pairs.map(async (pair, i) => {
        const res = await fetch(url(apps[i % 2], '/transfers'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(pair),
        });
        return { status: res.status, body: (await res.json()) as { resources: string[] } };
      }),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array<number>(30).fill(201));
    expect(answers[0].body.resources).toEqual(['account:ann', 'account:bob']);
    const balances = await Promise.all(accounts.map(async (account) => (await fetch(url(apps[0], `/balances/${account}`))).json()));
    const expected = accounts.map(
      (account) => pairs.filter((p) => p.to === account).length - pairs.filter((p) => p.from === account).length,
    );
    expect(balances).toEqual(expected);
    // The same account twice is locked once, not refused.
    const self = await fetch(url(apps[1], '/transfers'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'ann', to: 'ann' }),
    });
    expect([self.status, await self.json()]).toEqual([201, { resources: ['account:ann'] }]);
  }, 300_000);
});

describe('lock family decorators: options checked at decoration time', () => {
  const declare = (decorator: MethodDecorator): void => {
    class Bad {
      handler(): void {}
    }
    decorator(Bad.prototype, 'handler', Object.getOwnPropertyDescriptor(Bad.prototype, 'handler')!);
  };

  it('names the decorator, the handler and the option', () => {
    expect(() => declare(WithSemaphore('gpu', {} as { permits: number }))).toThrow(
      /@WithSemaphore on Bad\.handler: option "permits" must be an integer between 1 and 1000000, got undefined/,
    );
    expect(() => declare(WithSemaphore('gpu', { permits: 2, mode: 'read' } as { permits: number }))).toThrow(
      /@WithSemaphore on Bad\.handler: unknown option "mode"/,
    );
    expect(() => declare(WithSemaphore('gpu:{param.id}', { permits: 2 }))).toThrow(/@WithSemaphore on Bad\.handler: unknown placeholder/);
    expect(() => declare(WithLock('doc', { mode: 'shared' as 'read' }))).toThrow(
      /@WithLock on Bad\.handler: option "mode" must be one of read, write/,
    );
    expect(() => declare(WithLock([]))).toThrow(
      /@WithLock on Bad\.handler: the array of lock resources must hold 1 to 64 resources, got \[\]/,
    );
    expect(() => declare(WithLock(['a:{body.x}', '']))).toThrow(/@WithLock on Bad\.handler: the lock resource must be a non-empty string/);
    expect(() => declare(WithSemaphore('gpu', { permits: 4, waitMs: 0, conflictStatus: 429 }))).not.toThrow();
  });
});
