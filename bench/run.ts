/**
 * `npm run bench`: starts a private redis-server, runs every suite with interleaved rounds, prints
 * tables and writes bench/results/latest.{json,md} and chart.svg.
 *
 * Environment: BENCH_OPS (operations per round, default 20000), BENCH_ROUNDS (default 5),
 * BENCH_SUITES (comma-separated suite ids to run, default all).
 */
import 'reflect-metadata';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { RedisServer } from '../test/harness/redis-server';
import { benchRedis } from './harness/clients';
import { interleave, type Workload } from './harness/measure';
import { markdownTable, writeResults, type SuiteResult } from './harness/report';
import { peerLimiters } from './suites/limiter';

const OPS = Number(process.env.BENCH_OPS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WORKLOAD: Workload = { ops: OPS, concurrency: 64, keys: 1000 };

async function main(): Promise<void> {
  const server = await RedisServer.start();
  const redis = benchRedis(server.port, {});
  const admin = redis.client();
  const suites: SuiteResult[] = [];
  try {
    const rows = await interleave(peerLimiters(redis), WORKLOAD, ROUNDS, admin);
    const suite: SuiteResult = {
      id: 'limiter',
      title: 'Limiter consume (library level)',
      setup: `${WORKLOAD.concurrency} in flight, ${WORKLOAD.keys} keys, ${OPS} ops × ${ROUNDS} interleaved rounds`,
      columns: [
        { key: 'opsPerSec', label: 'ops/s' },
        { key: 'cpuUsPerOp', label: 'client CPU µs/op', digits: 1 },
        { key: 'redisUsPerOp', label: 'Redis µs/op', digits: 1 },
      ],
      rows: rows.map((r) => ({ name: r.name, values: { opsPerSec: r.opsPerSec, cpuUsPerOp: r.cpuUsPerOp, redisUsPerOp: r.redisUsPerOp } })),
      targets: [],
      chartKey: 'opsPerSec',
      chartLabel: 'ops/s',
    };
    suites.push(suite);
    console.log(markdownTable(suite));
  } finally {
    await redis.closeAll();
    await server.destroy();
  }
  writeResults(join(__dirname, 'results'), suites, {
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    redis: 'redis-server 7 (private, loopback)',
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
