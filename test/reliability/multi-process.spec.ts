/**
 * Exactness across processes: separate Node processes (own connections, own event loops) hammer one
 * key, and @WithLock writers in two processes do read-modify-write on one Redis value.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runTsChild } from '../harness/child-process';
import { harnessAddresses } from '../harness/harness-env';
import { uniquePrefix } from '../harness/topologies';
import { recordScenario } from '../harness/scenario-summary';

jest.setTimeout(120_000);

const CHILD = join(__dirname, 'fixtures', 'hit-child.ts');

describe('multi-process exactness (standalone)', () => {
  const { standalone } = harnessAddresses();
  const url = `redis://${standalone.host}:${standalone.port}`;
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(standalone);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('4 processes x 2500 hits on one key, limit 1000: every algorithm admits exactly 1000', async () => {
    const prefix = uniquePrefix();
    const started = performance.now();
    const children = await Promise.all([0, 1, 2, 3].map((i) => runTsChild(CHILD, ['hits', url, prefix, '4', String(i)], 100_000)));
    const took = performance.now() - started;
    for (const child of children)
      expect({ code: child.code, stderr: child.stderr, timedOut: child.timedOut }).toEqual({ code: 0, stderr: '', timedOut: false });
    const perProcess = children.map((c) => JSON.parse(c.stdout.trim()) as Record<string, number>);
    for (const algorithm of ['sliding-log', 'sliding-window', 'token-bucket', 'fixed-window']) {
      const total = perProcess.reduce((sum, p) => sum + p[algorithm], 0);
      expect({ algorithm, total }).toEqual({ algorithm, total: 1000 });
      recordScenario({
        scenario: `4 processes x 2500 hits, limit 1000: ${algorithm}`,
        topology: 'standalone',
        operations: 10_000,
        failures: 0,
        unhandledRejections: 0,
        maxLatencyMs: took,
        note: `admitted ${total} (${perProcess.map((p) => p[algorithm]).join('+')})`,
      });
    }
  });

  it('2 processes x 100 concurrent @WithLock read-modify-write requests: no lost update', async () => {
    const prefix = uniquePrefix();
    const started = performance.now();
    const children = await Promise.all([0, 1].map((i) => runTsChild(CHILD, ['lock', url, prefix, '2', String(i)], 100_000)));
    const took = performance.now() - started;
    for (const child of children)
      expect({ code: child.code, stderr: child.stderr, timedOut: child.timedOut }).toEqual({ code: 0, stderr: '', timedOut: false });
    const ok = children.map((c) => (JSON.parse(c.stdout.trim()) as { ok: number }).ok);
    expect(ok).toEqual([100, 100]);
    expect(await redis.get(`${prefix}:shared-counter`)).toBe('200');
    recordScenario({
      scenario: '2 processes x 100 @WithLock writers',
      topology: 'standalone',
      operations: 200,
      failures: 0,
      unhandledRejections: 0,
      maxLatencyMs: took,
      note: 'counter = 200, no lost update',
    });
  });
});
