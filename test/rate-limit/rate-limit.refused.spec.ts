/**
 * Nothing counted that was refused: a hit whose caller was answered by the fail mode (Redis frozen
 * past `timeoutMs`) is not recorded when Redis resumes and runs it (the deadline the scripts check
 * against Redis TIME), and a server out of memory (maxmemory + noeviction) refuses the scripts before
 * they write (their `#!lua` shebang): fail-closed answers 503, the keys do not grow. Every feature's
 * writes are refused the same way, while its releases still work (`allow-oom`) and reads still
 * answer (`no-writes`). On a private standalone server and a private 3-master cluster.
 */
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import {
  BoundedCounterService,
  CacheAsideService,
  LeaderboardService,
  LockService,
  LuaScriptEngine,
  RateLimit,
  RateLimiterService,
  RateLimitUnavailableError,
  RedisLuaModule,
  RedisLuaUnavailableError,
  type RateLimitAlgorithm,
  type RateLimitFailMode,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import request from 'supertest';
import { RedisClusterHarness, RedisServer } from '../harness/redis-server';
import { recordScenario } from '../harness/scenario-summary';

jest.setTimeout(60_000);

const LIMIT = 5;
const ALGORITHMS: readonly RateLimitAlgorithm[] = ['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window'];

@Controller()
class RefusedController {
  @Get('closed')
  @RateLimit({ limit: LIMIT, windowMs: 600_000, failMode: 'closed', timeoutMs: 200 })
  closed(): string {
    return 'ran';
  }

  @Get('oom')
  @RateLimit({ limit: LIMIT, windowMs: 600_000, failMode: 'closed' })
  oom(): string {
    return 'ran';
  }

  @Get('open')
  @RateLimit({ limit: LIMIT, windowMs: 600_000, failMode: 'open', timeoutMs: 200 })
  open(): string {
    return 'ran';
  }
}

type Topology = 'standalone' | 'cluster';

interface Setup {
  app: INestApplication;
  /** The module's own connections to every master (commands on them are ordered before the app's next ones). */
  masters(): Redis[];
  stop(): Promise<void>;
}

async function setUp(topology: Topology): Promise<Setup> {
  let connection: Pick<RedisLuaModuleOptions, 'url' | 'cluster'>;
  let stopServers: () => Promise<void>;
  if (topology === 'standalone') {
    const server = await RedisServer.start();
    connection = { url: server.url };
    stopServers = () => server.destroy();
  } else {
    const cluster = await RedisClusterHarness.start({ masters: 3 });
    connection = { cluster: { nodes: cluster.nodes } };
    stopServers = () => cluster.destroy();
  }
  const moduleRef = await Test.createTestingModule({
    imports: [RedisLuaModule.forRoot({ ...connection, keyPrefix: 'refused' })],
    controllers: [RefusedController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  const client = app.get(LuaScriptEngine).client;
  return {
    app,
    masters: () => ('nodes' in client && client.isCluster ? client.nodes('master') : [client as Redis]),
    stop: async () => {
      await app.close();
      await stopServers();
    },
  };
}

/**
 * Freezes every master for `seconds` with DEBUG SLEEP sent on the module's own connections, so the
 * app's next calls queue behind it on the same sockets; `woken` settles once every call written
 * before it has run (a PING after them came back).
 */
function freeze(setup: Setup, seconds: number): { woken: () => Promise<void> } {
  const sleeping = setup.masters().map((node) => node.call('debug', 'sleep', String(seconds)));
  return {
    woken: async () => {
      await Promise.all(sleeping);
      await Promise.all(setup.masters().map((node) => node.ping()));
    },
  };
}

async function setMaxmemory(setup: Setup, value: string): Promise<void> {
  await Promise.all(
    setup.masters().map(async (node) => {
      await node.config('SET', 'maxmemory-policy', 'noeviction');
      await node.config('SET', 'maxmemory', value);
    }),
  );
}

describe.each<Topology>(['standalone', 'cluster'])('refused hits are not counted [%s]', (topology) => {
  let setup: Setup;
  beforeAll(async () => {
    setup = await setUp(topology);
  }, 60_000);
  afterAll(async () => {
    await setup?.stop();
  });

  it.each<[RateLimitFailMode, number]>([
    ['closed', 503],
    ['open', 200],
  ])('DEBUG SLEEP 1 with timeoutMs 200, failMode %s: 5 requests answered %i, none recorded when Redis wakes', async (mode, status) => {
    const http = setup.app.getHttpServer();
    const path = `/${mode}`;
    const frozen = freeze(setup, 1);
    const timings: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const started = performance.now();
        const answer = await request(http).get(path);
        timings.push(performance.now() - started);
        return answer;
      }),
    );
    expect(answers.map((a) => a.status)).toEqual([status, status, status, status, status]);
    if (mode === 'closed') expect(answers.map((a) => a.headers['retry-after'])).toEqual(['1', '1', '1', '1', '1']);
    await frozen.woken();
    // The five buffered calls ran after their deadline and recorded nothing: the full limit is left.
    const after = [];
    for (let i = 0; i <= LIMIT; i++) after.push((await request(http).get(path)).status);
    expect(after).toEqual([200, 200, 200, 200, 200, 429]);
    recordScenario({
      scenario: `DEBUG SLEEP 1, timeoutMs 200, failMode ${mode}`,
      topology,
      operations: 5,
      failures: mode === 'closed' ? 5 : 0,
      unhandledRejections: 0,
      maxLatencyMs: Math.round(Math.max(...timings)),
      note: `5 × ${status}; recorded when Redis woke: 0 (limit left ${LIMIT}/${LIMIT})`,
    });
  });

  it.each(ALGORITHMS)('%s: a call frozen past its timeoutMs leaves no trace; peek shows the full limit', async (algorithm) => {
    const limiter = setup.app.get(RateLimiterService);
    const rule = { limit: LIMIT, windowMs: 600_000, algorithm };
    const key = `frozen-${algorithm}`;
    expect((await limiter.consume(key, rule, { failMode: 'closed', timeoutMs: 200 })).remaining).toBe(LIMIT - 1);
    const frozen = freeze(setup, 1);
    const refused = await Promise.allSettled(
      Array.from({ length: 5 }, () => limiter.consume(key, rule, { failMode: 'closed', timeoutMs: 200 })),
    );
    for (const r of refused) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(RateLimitUnavailableError);
      expect((r as PromiseRejectedResult).reason).toMatchObject({ reason: 'timeout' });
    }
    await frozen.woken();
    expect(await limiter.peek(key, rule)).toMatchObject({ allowed: true, remaining: LIMIT - 1 });
  });

  describe('maxmemory reached, noeviction', () => {
    afterEach(async () => {
      await setMaxmemory(setup, '0');
    });

    it('a fail-closed route answers 503 and its keys do not grow (every algorithm); releases and reads still work', async () => {
      const limiter = setup.app.get(RateLimiterService);
      const locks = setup.app.get(LockService);
      const boards = setup.app.get(LeaderboardService);
      await boards.submit('oom-board', 'ada', 10);
      const held = await locks.acquire('oom-held', { ttlMs: 30_000, autoExtend: false });
      const rules = ALGORITHMS.map((algorithm) => ({ limit: LIMIT, windowMs: 600_000, algorithm }));
      for (const rule of rules) await limiter.consume(`oom-${rule.algorithm}`, rule);
      const client = setup.app.get(LuaScriptEngine).client;
      const memoryOf = async (key: string): Promise<string> => JSON.stringify(await client.call('dump', key));

      const keys = await Promise.all(rules.map((rule) => setup.app.get(RateLimiterService).peek(`oom-${rule.algorithm}`, rule)));
      expect(keys.map((k) => k.remaining)).toEqual(rules.map(() => LIMIT - 1));
      const before = await Promise.all(rules.map((rule) => memoryOf(limiterKey(rule.algorithm))));

      await setMaxmemory(setup, '1');
      const http = setup.app.getHttpServer();
      const refusedAt = performance.now();
      const answers = await Promise.all(Array.from({ length: 5 }, () => request(http).get('/oom')));
      const refusedMs = performance.now() - refusedAt;
      expect(answers.map((a) => [a.status, a.headers['retry-after']])).toEqual(answers.map(() => [503, '1']));
      for (const rule of rules) {
        const err = await limiter.consume(`oom-${rule.algorithm}`, rule, { failMode: 'closed' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RateLimitUnavailableError);
        expect(err).toMatchObject({ reason: 'refused', redisCode: 'OOM' });
      }
      // Every feature's writes are refused the same way, before they write.
      const writes: Array<[string, () => Promise<unknown>]> = [
        ['lock', () => locks.acquire('oom-new', { waitMs: 0 })],
        ['leaderboard', () => boards.submit('oom-board', 'bob', 5)],
        ['counter', () => setup.app.get(BoundedCounterService).increment('oom-counter', 1, 10)],
        ['cache', () => setup.app.get(CacheAsideService).getOrLoad('oom-item', 60_000, () => 'value')],
      ];
      for (const [feature, write] of writes) {
        const err = await write().catch((e: unknown) => e);
        expect({ feature, err }).toEqual({ feature, err: expect.any(RedisLuaUnavailableError) });
        expect({ feature, code: (err as RedisLuaUnavailableError).redisCode }).toEqual({ feature, code: 'OOM' });
      }
      // Reads answer (no-writes scripts), and a held lock can be renewed and released (allow-oom).
      expect(await boards.top('oom-board', 10)).toEqual([expect.objectContaining({ member: 'ada', score: 10 })]);
      await held.extend(30_000);
      expect(held.held).toBe(true);
      expect(await held.release()).toBe(true);

      await setMaxmemory(setup, '0');
      const after = await Promise.all(rules.map((rule) => memoryOf(limiterKey(rule.algorithm))));
      expect(after).toEqual(before);
      expect((await Promise.all(rules.map((rule) => limiter.peek(`oom-${rule.algorithm}`, rule)))).map((r) => r.remaining)).toEqual(
        rules.map(() => LIMIT - 1),
      );
      recordScenario({
        scenario: 'maxmemory reached, noeviction',
        topology,
        operations: 5 + rules.length + writes.length,
        failures: 5 + rules.length + writes.length,
        unhandledRejections: 0,
        maxLatencyMs: Math.round(refusedMs),
        note: '503 / OOM refused before writing; keys unchanged; release, extend, reads work',
      });
    });
  });
});

const CODES: Record<RateLimitAlgorithm, string> = { 'sliding-log': 'l', 'sliding-window': 's', 'token-bucket': 't', 'fixed-window': 'f' };

/** The Redis key of the single-rule limit on `oom-<algorithm>` (`<prefix>:rl:{<identifier>}:<code>:<window>:<limit>`). */
function limiterKey(algorithm: RateLimitAlgorithm): string {
  return `refused:rl:{oom-${algorithm}}:${CODES[algorithm]}:600000:${LIMIT}`;
}
