/** The limiter suite: rows, medians and the targets for consume. */
import type { Redis } from 'ioredis';
import type { INestApplicationContext } from '@nestjs/common';
import type { BenchRedis } from '../harness/clients';
import { interleave, type Row, type Workload } from '../harness/measure';
import { limitCheck, ratioCheck, type SuiteResult, type TargetCheck } from '../harness/report';
import {
  ALGORITHMS,
  CEILING,
  FLEXIBLE,
  MINIMAL_LOG,
  NEST_LAB,
  ceilingOn,
  ioredisCeilingOn,
  ourLimiters,
  ourName,
  peerLimiters,
  referenceScripts,
  REUSED,
  reusedRule,
} from './limiter';
import { LuaScriptEngine } from '../../lib';

/** Suffix of the rows measured with `coalesceWrites: false` (the library before write coalescing). */
export const UNCOALESCED = '[coalesceWrites: false]';

export const LIBRARY_COLUMNS = [
  { key: 'opsPerSec', label: 'ops/s' },
  { key: 'cpuUsPerOp', label: 'client CPU µs/op', digits: 1 },
  { key: 'userUsPerOp', label: 'of which user-space', digits: 1 },
  { key: 'redisUsPerOp', label: 'Redis µs/op', digits: 1 },
  { key: 'redisCpuUsPerOp', label: 'Redis process CPU µs/op', digits: 1 },
];

export function rowValues(r: Row): Record<string, number> {
  return {
    opsPerSec: r.opsPerSec,
    cpuUsPerOp: r.cpuUsPerOp,
    userUsPerOp: r.userUsPerOp,
    redisUsPerOp: r.redisUsPerOp,
    redisCpuUsPerOp: r.redisCpuUsPerOp,
  };
}

export async function limiterSuite(
  app: INestApplicationContext,
  redis: BenchRedis,
  admin: Redis,
  workload: Workload,
  rounds: number,
  /** The module with `coalesceWrites: false`, for the rows before write coalescing. */
  uncoalesced: INestApplicationContext,
): Promise<SuiteResult> {
  const ours = app.get(LuaScriptEngine).client as Redis;
  const contenders = [
    ...ourLimiters(app),
    reusedRule(app),
    ...peerLimiters(redis),
    ceilingOn(app),
    ioredisCeilingOn(ours),
    ...referenceScripts(redis.client(), app),
  ];
  const [uncoalescedLog] = ourLimiters(uncoalesced);
  contenders.push(
    { ...uncoalescedLog, name: `${uncoalescedLog.name} ${UNCOALESCED}` },
    { ...ceilingOn(uncoalesced), name: `${CEILING} ${UNCOALESCED}` },
  );
  const rows = await interleave(contenders, workload, rounds, admin);
  const by = (name: string): Row => rows.find((r) => r.name === name)!;
  const peers = [by(FLEXIBLE), by(NEST_LAB)];
  const bestPeerOps = Math.max(...peers.map((p) => p.opsPerSec));
  const bestPeerCpu = Math.min(...peers.map((p) => p.cpuUsPerOp));
  const ceiling = by(CEILING);
  const log = by(ourName('sliding-log'));
  const targets: TargetCheck[] = [
    ratioCheck('sliding-log ops/s ÷ best peer', log.opsPerSec / bestPeerOps, 1.3),
    // The floor: the bare commands of a sliding log, on our client (no exact sliding log does less in Redis).
    {
      ...ratioCheck('floor: bare sliding-log commands ops/s ÷ best peer (reference)', by(MINIMAL_LOG).opsPerSec / bestPeerOps, 1.3),
      target: '(≥ 1.3 needs this above 1.3)',
      reference: true,
    },
    {
      ...ratioCheck('sliding-log ops/s ÷ that floor (reference)', log.opsPerSec / by(MINIMAL_LOG).opsPerSec, 0),
      target: '—',
      reference: true,
    },
    ratioCheck('sliding-log ops/s ÷ `return 1` ceiling', log.opsPerSec / ceiling.opsPerSec, 0.85),
    {
      ...ratioCheck(
        'floor: bare sliding-log commands ops/s ÷ `return 1` ceiling (reference)',
        by(MINIMAL_LOG).opsPerSec / ceiling.opsPerSec,
        0.85,
      ),
      target: '(≥ 0.85 needs this above 0.85)',
      reference: true,
    },
    limitCheck('sliding-log client CPU ÷ best peer', log.cpuUsPerOp / bestPeerCpu, 0.6),
    limitCheck('sliding-log Redis µs per call', log.redisUsPerOp, 9),
    // The floor: a script call that does nothing, on the same client (no client can do a call for less).
    {
      ...limitCheck('floor: `return 1` ceiling client CPU ÷ best peer (reference)', ceiling.cpuUsPerOp / bestPeerCpu, 0.6),
      target: '(≤ 0.6 needs ours below this)',
      reference: true,
    },
  ];
  for (const algorithm of ALGORITHMS.slice(1)) {
    const row = by(ourName(algorithm));
    targets.push(
      ratioCheck(`${algorithm} ops/s ÷ best peer`, row.opsPerSec / bestPeerOps, 1.5),
      limitCheck(`${algorithm} client CPU ÷ best peer`, row.cpuUsPerOp / bestPeerCpu, 0.5),
      limitCheck(`${algorithm} Redis µs per call`, row.redisUsPerOp, 5),
    );
  }
  // A fresh literal per call (the README) costs no more than the best case, one object reused.
  targets.push(
    limitCheck(
      'fixed-window client CPU, fresh literal ÷ rule object reused',
      by(ourName('fixed-window')).cpuUsPerOp / by(REUSED).cpuUsPerOp,
      1.1,
    ),
  );
  return {
    id: 'limiter',
    title: 'Limiter consume (library level)',
    setup: `${workload.concurrency} in flight, ${workload.keys} keys, ${workload.ops} ops × ${rounds} interleaved rounds; our rows call consume as the README shows (a fresh rule literal per call; one reference row reuses one rule object); sliding log at limit 100 (keys rotate so every call is admitted), others at limit 1,000,000; peers on a default ioredis client`,
    columns: LIBRARY_COLUMNS,
    rows: rows.map((r) => ({ name: r.name, values: rowValues(r) })),
    targets,
    chartKey: 'opsPerSec',
    chartLabel: 'ops/s',
  };
}
