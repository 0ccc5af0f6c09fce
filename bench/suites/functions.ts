/**
 * `scripts: 'functions'` against `scripts: 'eval'` on the same scripts and server: the README's call
 * shapes (a fresh options literal per call) for a rate-limit consume, a leaderboard submit and a
 * leaderboard top (read-only: FCALL_RO against EVALSHA), interleaved. Then a failover run per mode on
 * a private 3+3 cluster: consumes under load, a master killed (kill -9), and what the recovery cost:
 * EVAL fallbacks, FUNCTION LOADs, failed calls.
 */
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { LeaderboardService, RateLimiterService, RedisLuaModule } from '../../lib';
import { commandCalls } from '../../test/harness/commandstats';
import { RedisClusterHarness } from '../../test/harness/redis-server';
import { libraryContext } from '../harness/app';
import { interleave, type Contender, type Row, type Workload } from '../harness/measure';
import { limitCheck, type SuiteResult } from '../harness/report';
import { LIBRARY_COLUMNS, rowValues } from './limiter-suite';

const MODES = ['eval', 'functions'] as const;
type Mode = (typeof MODES)[number];

function contenders(app: INestApplicationContext, mode: Mode): Contender[] {
  const limiter = app.get(RateLimiterService);
  const boards = app.get(LeaderboardService);
  return [
    { name: `${mode}: rate-limit consume`, op: (k) => limiter.consume(`u${k}`, { limit: 1_000_000, windowMs: 60_000 }) },
    { name: `${mode}: leaderboard submit`, op: (k, i) => boards.submit(`b${k % 100}`, `m${i % 50}`, i % 10_000) },
    { name: `${mode}: leaderboard top 10`, op: (k) => boards.top(`b${k % 100}`, 10) },
  ];
}

export async function functionsSuite(port: number, admin: Redis, workload: Workload, rounds: number): Promise<SuiteResult[]> {
  const apps = await Promise.all(MODES.map((scripts) => libraryContext(port, { scripts, keyPrefix: `bench-${scripts}` })));
  let rows: Row[];
  try {
    rows = await interleave(
      MODES.flatMap((mode, m) => contenders(apps[m], mode)),
      workload,
      rounds,
      admin,
    );
  } finally {
    await Promise.all(apps.map((app) => app.close()));
  }
  const by = (name: string): Row => rows.find((r) => r.name === name)!;
  const shapes = ['rate-limit consume', 'leaderboard submit', 'leaderboard top 10'];
  const calls: SuiteResult = {
    id: 'functions',
    title: "Script modes: FCALL (scripts: 'functions') vs EVALSHA (scripts: 'eval'), same scripts",
    setup: `${workload.concurrency} in flight, ${workload.ops} ops × ${rounds} interleaved rounds, standalone`,
    columns: LIBRARY_COLUMNS,
    rows: rows.map((r) => ({ name: r.name, values: rowValues(r) })),
    // No target in the issue: the ratios are reported (within this machine's noise, 0.9–1.1, in our runs).
    targets: shapes.flatMap((shape) =>
      (['cpuUsPerOp', 'redisUsPerOp'] as const).map((key) => ({
        description: `${shape}: ${key === 'cpuUsPerOp' ? 'client CPU' : 'Redis µs'} functions ÷ eval`,
        measured: by(`functions: ${shape}`)[key] / by(`eval: ${shape}`)[key],
        target: '(reported)',
        met: true,
        reference: true,
      })),
    ),
  };
  const failovers: Array<{ name: string; values: Record<string, number> }> = [];
  for (const mode of MODES) failovers.push({ name: mode, values: await failoverRun(mode) });
  const failover: SuiteResult = {
    id: 'functions-failover',
    title: 'Script modes through a failover: consumes under load on a 3+3 cluster, one master killed (kill -9)',
    setup: '32 in flight over 1000 keys; counted from the kill until 2000 consumes succeeded after the promotion',
    columns: [
      { key: 'calls', label: 'consumes' },
      { key: 'failed', label: 'failed' },
      { key: 'noscript', label: 'NOSCRIPT replies' },
      { key: 'evals', label: 'EVAL fallbacks' },
      { key: 'loads', label: 'FUNCTION LOADs' },
    ],
    rows: failovers,
    targets: [
      limitCheck(
        'functions mode: EVAL fallbacks + FUNCTION LOADs after the failover',
        failovers[1].values.evals + failovers[1].values.loads,
        0,
      ),
    ],
  };
  return [calls, failover];
}

/** One failover under load; the counts are taken from every node's commandstats after the kill. */
async function failoverRun(mode: Mode): Promise<Record<string, number>> {
  const cluster = await RedisClusterHarness.start({ masters: 3, replicasPerMaster: 1, clusterNodeTimeoutMs: 1_000 });
  @Module({
    imports: [
      RedisLuaModule.forRoot({ cluster: { nodes: cluster.nodes }, keyPrefix: 'fo', scripts: mode, rateLimit: { failMode: 'closed' } }),
    ],
  })
  class FailoverModule {}
  const app = await NestFactory.createApplicationContext(FailoverModule, { logger: false });
  try {
    const limiter = app.get(RateLimiterService);
    const consume = (i: number) => limiter.consume(`u${i % 1000}`, { limit: 1_000_000, windowMs: 600_000 });
    // Warm: every script cached (eval) on every master, as in a service that has been running.
    await Promise.all(Array.from({ length: 3000 }, (_, i) => consume(i)));
    for (const server of cluster.servers) server.cli('config', 'resetstat');
    let calls = 0;
    let failed = 0;
    let succeededAfter = 0;
    let recovered = false;
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = w; !stop; i += 32) {
        calls++;
        try {
          await consume(i);
          if (recovered && ++succeededAfter >= 2000) stop = true;
        } catch {
          failed++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    };
    const load = Promise.all(Array.from({ length: 32 }, (_, w) => worker(w)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await cluster.masters()[0].stop();
    await cluster.waitUntilHealthy(30_000);
    recovered = true;
    await load;
    const stats = cluster.servers.filter((s) => s.running).map((s) => `${s.cli('info', 'commandstats')}\n${s.cli('info', 'errorstats')}`);
    const noscript = stats.reduce((sum, info) => sum + Number(/^errorstat_NOSCRIPT:count=(\d+)/m.exec(info)?.[1] ?? 0), 0);
    return {
      calls,
      failed,
      noscript,
      evals: commandCalls(stats, 'eval'),
      loads: commandCalls(stats, 'function|load'),
    };
  } finally {
    await app.close();
    await cluster.destroy();
  }
}
