/** Leaderboard submit vs the `return 1` ceiling on the same client (1000 boards, 50 members each). */
import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { LeaderboardService } from '../../lib';
import { interleave, type Workload } from '../harness/measure';
import { ratioCheck, type SuiteResult } from '../harness/report';
import { CEILING, ceilingOn } from './limiter';
import { LIBRARY_COLUMNS, rowValues } from './limiter-suite';

export async function leaderboardSuite(
  app: INestApplicationContext,
  admin: Redis,
  workload: Workload,
  rounds: number,
): Promise<SuiteResult> {
  const boards = app.get(LeaderboardService);
  const ceiling = ceilingOn(app);
  const rows = await interleave(
    [{ name: 'nest-redis-lua leaderboard submit', op: (k, i) => boards.submit(`b${k % 1000}`, `m${i % 50}`, i % 10_000) }, ceiling],
    workload,
    rounds,
    admin,
  );
  const [submit, top] = rows;
  return {
    id: 'leaderboard',
    title: 'Leaderboard submit (library level)',
    setup: `${workload.concurrency} in flight, ${workload.ops} ops × ${rounds} interleaved rounds, 1000 boards`,
    columns: LIBRARY_COLUMNS,
    rows: rows.map((r) => ({ name: r.name === CEILING ? CEILING : r.name, values: rowValues(r) })),
    targets: [
      {
        ...ratioCheck('submit ops/s ÷ `return 1` ceiling (reported, no target in the issue)', submit.opsPerSec / top.opsPerSec, 0),
        target: '—',
      },
    ],
    chartKey: 'opsPerSec',
    chartLabel: 'ops/s',
  };
}
