/**
 * Throughput, client CPU and Redis-side cost of one workload, measured the same way for every
 * contender: `concurrency` operations in flight, `ops` in all, spread over `keys` keys.
 */
import type { Redis } from 'ioredis';

/** One thing being measured: a library call, or a reference script. */
export interface Contender {
  /** Row label, e.g. "nest-redis-lua sliding-log". */
  name: string;
  /** Called once before the first round. */
  setup?(): Promise<void>;
  /** One operation on key number `key` (0 ≤ key < keys). */
  op(key: number, i: number): Promise<unknown>;
  /** Called once after the last round. */
  teardown?(): Promise<void>;
}

export interface Workload {
  ops: number;
  concurrency: number;
  keys: number;
}

export interface Sample {
  opsPerSec: number;
  /** Client (this process) CPU time per operation, µs: process.cpuUsage() over the run ÷ ops. */
  cpuUsPerOp: number;
  /** Redis CPU time per operation, µs: INFO commandstats usec over the run ÷ ops. */
  redisUsPerOp: number;
}

/** Sum of `usec` over every command in INFO commandstats, except the measuring commands themselves. */
async function redisUsec(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  let total = 0;
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=\d+,usec=(\d+),/.exec(line.trim());
    if (match && !/^(info|config\|resetstat|config)$/.test(match[1])) total += Number(match[2]);
  }
  return total;
}

/** Runs `workload.ops` operations of `contender`, keeping `concurrency` in flight. */
export async function measure(contender: Contender, workload: Workload, admin: Redis): Promise<Sample> {
  await admin.config('RESETSTAT');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < workload.ops) {
      const i = next++;
      await contender.op(i % workload.keys, i);
    }
  };
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: workload.concurrency }, worker));
  const elapsedNs = Number(process.hrtime.bigint() - started);
  const cpu = process.cpuUsage(cpuBefore);
  const usec = await redisUsec(admin);
  return {
    opsPerSec: workload.ops / (elapsedNs / 1e9),
    cpuUsPerOp: (cpu.user + cpu.system) / workload.ops,
    redisUsPerOp: usec / workload.ops,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface Row {
  name: string;
  opsPerSec: number;
  cpuUsPerOp: number;
  redisUsPerOp: number;
  samples: Sample[];
}

/**
 * Interleaved rounds (A B C, B C A, C A B, ...): every contender runs once per round, the order
 * rotating so none always runs first or last on a noisy machine. Returns medians per contender.
 */
export async function interleave(
  contenders: readonly Contender[],
  workload: Workload,
  rounds: number,
  admin: Redis,
  warmupOps = Math.min(2000, workload.ops),
): Promise<Row[]> {
  for (const c of contenders) await c.setup?.();
  for (const c of contenders) await measure(c, { ...workload, ops: warmupOps }, admin);
  const samples = new Map<Contender, Sample[]>(contenders.map((c) => [c, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(round + k) % contenders.length];
      samples.get(c)!.push(await measure(c, workload, admin));
    }
  }
  for (const c of contenders) await c.teardown?.();
  return contenders.map((c) => {
    const s = samples.get(c)!;
    return {
      name: c.name,
      opsPerSec: median(s.map((x) => x.opsPerSec)),
      cpuUsPerOp: median(s.map((x) => x.cpuUsPerOp)),
      redisUsPerOp: median(s.map((x) => x.redisUsPerOp)),
      samples: s,
    };
  });
}
