/**
 * What observability costs the limiter: the README's consume (a fresh rule literal per call) with
 * nothing configured, with the OpenTelemetry metrics on (an SDK MeterProvider registered globally,
 * as an app's SDK does), and with an `onEvent` listener only; interleaved on one server. With
 * BENCH_BASELINE_LIB=<path to another checkout's lib/> (inside this repository, e.g. a worktree
 * under .tmp/, so that it resolves the same node_modules) the same call of that build runs in the
 * same rounds: "off" against the code before telemetry existed.
 */
import { resolve } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { Redis } from 'ioredis';
import { RateLimiterService } from '../../lib';
import { libraryContext } from '../harness/app';
import { interleave, type Contender, type Row, type Workload } from '../harness/measure';
import { limitCheck, type SuiteResult } from '../harness/report';
import { LIBRARY_COLUMNS, rowValues } from './limiter-suite';

type Consume = (key: string, rule: { limit: number; windowMs: number }) => Promise<unknown>;

function consumer(name: string, consume: Consume): Contender {
  return { name, op: (k) => consume(`u${k}`, { limit: 1_000_000, windowMs: 60_000 }) };
}

/** The limiter of another build of the library (BENCH_BASELINE_LIB), on the same server. */
async function baselineContext(lib: string, port: number): Promise<{ app: INestApplicationContext; consume: Consume }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a build chosen at run time
  const other = require(resolve(lib)) as typeof import('../../lib');
  @Module({ imports: [other.RedisLuaModule.forRoot({ redis: { host: '127.0.0.1', port }, keyPrefix: 'bench-before' })] })
  class BaselineModule {}
  const app = await NestFactory.createApplicationContext(BaselineModule, { logger: false, abortOnError: false });
  const limiter = app.get(other.RateLimiterService);
  return { app, consume: (key, rule) => limiter.consume(key, rule) };
}

export async function telemetrySuite(port: number, admin: Redis, workload: Workload, rounds: number): Promise<SuiteResult> {
  const apps: INestApplicationContext[] = [];
  const contenders: Contender[] = [];
  const provider = new MeterProvider({
    // Collected on demand only: what a pull exporter (Prometheus) costs between scrapes.
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
        exportIntervalMillis: 3_600_000,
      }),
    ],
  });
  try {
    const baseline = process.env.BENCH_BASELINE_LIB;
    if (baseline) {
      const before = await baselineContext(baseline, port);
      apps.push(before.app);
      contenders.push(consumer('before telemetry (BENCH_BASELINE_LIB): consume', before.consume));
    }
    // The library looks for a meter provider when its module starts: "off" starts before one is registered.
    const off = await libraryContext(port, { keyPrefix: 'bench-off' });
    apps.push(off);
    const events = await libraryContext(port, { keyPrefix: 'bench-events', metrics: false, onEvent: () => undefined });
    apps.push(events);
    metrics.setGlobalMeterProvider(provider);
    const otel = await libraryContext(port, { keyPrefix: 'bench-otel' });
    apps.push(otel);
    const limiterOf = (app: INestApplicationContext): Consume => {
      const limiter = app.get(RateLimiterService);
      return (key, rule) => limiter.consume(key, rule);
    };
    contenders.push(
      consumer('telemetry off: consume', limiterOf(off)),
      consumer('OpenTelemetry metrics: consume', limiterOf(otel)),
      consumer('onEvent listener only: consume', limiterOf(events)),
    );
    const rows = await interleave(contenders, workload, rounds, admin);
    const by = (name: string): Row => rows.find((r) => r.name.startsWith(name))!;
    const cpu = (name: string): number => by(name).cpuUsPerOp;
    const targets = [
      limitCheck('consume: client CPU with OpenTelemetry metrics ÷ off', cpu('OpenTelemetry') / cpu('telemetry off'), 1.15),
      {
        description: 'consume: client CPU with an onEvent listener ÷ off',
        measured: cpu('onEvent') / cpu('telemetry off'),
        target: '(reported)',
        met: true,
        reference: true,
      },
    ];
    if (baseline) {
      targets.push({
        description: 'consume: client CPU off ÷ before telemetry (within noise: 0.9–1.1)',
        measured: cpu('telemetry off') / cpu('before telemetry'),
        target: '(reported)',
        met: true,
        reference: true,
      });
    }
    return {
      id: 'telemetry',
      title: 'Observability cost: the limiter with telemetry off, OpenTelemetry metrics on, an onEvent listener',
      setup: `${workload.concurrency} in flight, ${workload.ops} ops × ${rounds} interleaved rounds, standalone`,
      columns: LIBRARY_COLUMNS,
      rows: rows.map((r) => ({ name: r.name, values: rowValues(r) })),
      targets,
    };
  } finally {
    await Promise.all(apps.map((app) => app.close()));
    metrics.disable();
    await provider.shutdown();
  }
}
