/**
 * `npm run bench`: starts a private redis-server, runs every suite with interleaved rounds, prints
 * tables and writes bench/results/latest.{json,md} and chart.svg.
 *
 * Environment: BENCH_OPS (operations per round, default 20000), BENCH_ROUNDS (default 5),
 * BENCH_SUITES (comma-separated suite ids to run, default all: limiter,leaderboard,memory,http,lock,functions,telemetry),
 * BENCH_HTTP_SECONDS (seconds per HTTP scenario and round, default 3), BENCH_HTTP_ROUNDS (default 3), BENCH_NO_WRITE=1 (print only),
 * BENCH_FROM_TARBALL=1 (measure the build `npm pack` publishes instead of lib/: bench/harness/library-source.ts),
 * BENCH_BASELINE_LIB=.tmp/<worktree>/lib (suite telemetry: the same consume of another checkout, in the same rounds).
 */
// First: decides which build of the library every later import loads.
import { librarySource } from './harness/library-source';
import 'reflect-metadata';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { RedisServer } from '../test/harness/redis-server';
import { libraryContext } from './harness/app';
import { benchRedis } from './harness/clients';
import type { Workload } from './harness/measure';
import { markdownTable, writeResults, type SuiteResult } from './harness/report';
import { limiterSuite } from './suites/limiter-suite';
import { memorySuite } from './suites/memory';
import { leaderboardSuite } from './suites/leaderboard';
import { httpSuite } from './suites/http';
import { lockSuite } from './suites/lock';
import { functionsSuite } from './suites/functions';
import { telemetrySuite } from './suites/telemetry';

const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 3);
const HTTP_ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);

const OPS = Number(process.env.BENCH_OPS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WORKLOAD: Workload = { ops: OPS, concurrency: 64, keys: 1000 };
const SELECTED = (process.env.BENCH_SUITES ?? 'limiter,leaderboard,memory,http,lock,functions,telemetry').split(',').map((s) => s.trim());

async function main(): Promise<void> {
  console.log(`library: ${librarySource}`);
  let redisVersion = 'unknown';
  const server = await RedisServer.start();
  const redis = benchRedis(server.port, {});
  const admin = redis.client();
  const app = await libraryContext(server.port);
  // The same module without write coalescing, for the rows that show what it changes.
  const uncoalesced = await libraryContext(server.port, { coalesceWrites: false });
  redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? redisVersion;
  const suites: SuiteResult[] = [];
  const run = async (id: string, body: () => Promise<SuiteResult | SuiteResult[]>): Promise<void> => {
    if (!SELECTED.includes(id)) return;
    // Every suite starts on an empty server (the bench's private one): keys left by the previous
    // suite (a million sliding-log entries, keys expiring meanwhile) would slow Redis down for the next.
    await admin.flushall();
    const started = Date.now();
    const result = await body();
    for (const suite of Array.isArray(result) ? result : [result]) {
      suites.push(suite);
      console.log(markdownTable(suite));
    }
    console.log(`(${id}: ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  };
  try {
    // HTTP first, while this process is fresh: its server runs in this process, and the library
    // suites leave a bigger heap and hotter timers behind (the same routes measured 0.88 instead of
    // 1.0 of the unguarded route when run last).
    await run('http', () => httpSuite(server.port, HTTP_SECONDS, HTTP_ROUNDS));
    await run('limiter', () => limiterSuite(app, redis, admin, WORKLOAD, ROUNDS, uncoalesced));
    await run('leaderboard', () => leaderboardSuite(app, admin, WORKLOAD, ROUNDS));
    await run('lock', () => lockSuite(app, redis, admin, WORKLOAD, ROUNDS, uncoalesced));
    await run('memory', () => memorySuite(app, admin));
    await run('functions', () => functionsSuite(server.port, admin, WORKLOAD, ROUNDS));
    await run('telemetry', () => telemetrySuite(server.port, admin, WORKLOAD, ROUNDS));
  } finally {
    await app.close();
    await uncoalesced.close();
    await redis.closeAll();
    await server.destroy();
  }
  if (process.env.BENCH_NO_WRITE) return;
  writeResults(join(__dirname, 'results'), suites, {
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    redis: `redis-server ${redisVersion} (private, loopback)`,
    library: librarySource,
  });
}

main().then(
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
