/**
 * A private Redis Cluster (3 masters + 3 replicas, cluster-node-timeout 1000 ms): a master is killed
 * (kill -9) while every feature is under load. Its replica takes over; the same app keeps working.
 * In both script modes: under EVAL the new master's empty script cache costs NOSCRIPT → EVAL; with
 * Redis Functions the library was replicated, so nothing is loaded again.
 */
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import { LuaScriptEngine, RateLimiterService, RedisLuaHealthIndicator } from 'nest-redis-lua';
import { commandCalls } from '../harness/commandstats';
import { RedisClusterHarness } from '../harness/redis-server';
import { boundFor } from '../harness/timing';
import { featureApp, featureOps, newTally } from '../reliability/fixtures/features';
import { recordAll, underLoad } from '../reliability/fixtures/scenario';

jest.setTimeout(120_000);

/**
 * Errors a call may see while its master is down and the cluster fails over: the library's own (each
 * clear, none a hang, never a raw ioredis error), whatever ioredis reported underneath.
 */
const FAILOVER_ERRORS =
  /^(RedisLuaUnavailableError: nest-redis-lua: .*Redis is unavailable: (Connection is closed|Too many Cluster redirections|it refused the call \((CLUSTERDOWN|MOVED|TRYAGAIN)|Reached the max retries per request limit|no reply within option "commandTimeout")|LockTimeoutError|SemaphoreTimeoutError|CacheWaitTimeoutError)/;

describe.each(['eval', 'functions'] as const)('cluster failover under load (3 masters + 3 replicas), scripts: %s', (scripts) => {
  let cluster: RedisClusterHarness;
  let app: INestApplication;

  beforeAll(async () => {
    cluster = await RedisClusterHarness.start({ masters: 3, replicasPerMaster: 1, clusterNodeTimeoutMs: 1_000 });
    app = await featureApp({ cluster: { nodes: cluster.nodes }, keyPrefix: 'fo', scripts });
    // From here on, commandstats count only what the load and the failover cost.
    for (const server of cluster.servers) server.cli('config', 'resetstat');
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await cluster?.destroy();
  });

  it('kill -9 a master: its replica takes over, every feature resumes, no double lock holder, scripts on the new master', async () => {
    const tally = newTally();
    const rule = { limit: 1_000_000, windowMs: 600_000 };
    const victim = cluster.masters()[0];
    let failoverMs = 0;
    let resumeMs = 0;
    const results = await underLoad(featureOps(app, tally, { keys: 16 }), async (progress) => {
      await progress.successes(30);
      const killedAt = performance.now();
      await victim.stop(); // SIGKILL
      // The cluster reports a new master for the dead one's slots (polls CLUSTER INFO: no event exists).
      await cluster.waitUntilHealthy(30_000);
      failoverMs = performance.now() - killedAt;
      await progress.successes(50, undefined, 30_000);
      resumeMs = performance.now() - killedAt;
    });

    expect(cluster.masters()).toHaveLength(3);
    expect(tally.maxHolders).toBe(1);
    expect(tally.maxPermitHolders).toBeLessThanOrEqual(2);
    expect(tally.fenceOrderViolations).toBe(0);
    for (const [, r] of results) {
      expect(r.unhandledRejections).toBe(0);
      for (const message of r.errors.keys()) expect(message).toMatch(FAILOVER_ERRORS);
      // Bounded: commandTimeout (5 s default) plus the lock's and cache's waitMs (2 s), plus the
      // measured timer lateness and a margin.
      expect(r.maxLatencyMs).toBeLessThan(boundFor(5_000 + 2_000, r.maxLateMs, 2_000));
    }
    expect(results.get('rate limit')!.failures).toBe(0); // failMode open decides

    // Hits acknowledged by the old master but not yet replicated are lost (async replication):
    // the stored count may be lower than what was admitted, never higher than admitted + failed open.
    const limiter = app.get(RateLimiterService);
    let stored = 0;
    for (let k = 0; k < 16; k++) stored += rule.limit - (await limiter.peek(`rl-${k}`, rule)).remaining;
    const lost = Math.max(0, tally.rateAllowed - stored);
    expect(stored).toBeLessThanOrEqual(tally.rateAllowed + tally.rateDegraded);

    const engine = app.get(LuaScriptEngine);
    const stats = cluster.servers.filter((server) => server.running).map((server) => server.cli('info', 'commandstats'));
    const calls = (command: string): number => commandCalls(stats, command);
    if (scripts === 'functions') {
      // The library was replicated before the kill: no FUNCTION LOAD, no EVAL after the failover.
      expect(engine.functions!.loads).toBe(0);
      expect(calls('function|load')).toBe(0);
      expect(calls('eval') + calls('evalsha')).toBe(0);
      expect(calls('fcall')).toBeGreaterThan(0);
    } else {
      // The new master's script cache was empty: the calls above went through NOSCRIPT → EVAL.
      expect(calls('eval')).toBeGreaterThan(0);
    }
    // The health indicator loads whatever a master still lacks (every other registered script under EVAL).
    const health = await app.get(RedisLuaHealthIndicator).isHealthy('redis', { timeoutMs: 5_000 });
    expect(health.redis.status).toBe('up');
    if (scripts === 'functions') expect(health.redis).toMatchObject({ scriptsReloaded: 0 });
    for (const master of cluster.masters()) {
      const client = new Redis({ host: master.host, port: master.port });
      try {
        if (scripts === 'functions') {
          expect(await client.call('FUNCTION', 'LIST', 'LIBRARYNAME', engine.functions!.current().name)).toHaveLength(1);
        } else {
          expect(await client.script('EXISTS', ...engine.scripts.map((s) => s.sha))).toEqual(engine.scripts.map(() => 1));
        }
      } finally {
        client.disconnect();
      }
    }

    recordAll(`cluster: kill -9 a master (scripts: ${scripts})`, 'cluster 3+3', results, (f) =>
      f === 'rate limit'
        ? `failover ${(failoverMs / 1000).toFixed(1)} s, all resumed ${(resumeMs / 1000).toFixed(1)} s; ${tally.rateDegraded} failed open; ${lost} acknowledged hits lost`
        : f === 'lock'
          ? 'max 1 holder, fences increasing'
          : '',
    );
  });
});
