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
  /** Commands this contender sends outside scripts/transactions while it also runs scripts (lowercase). */
  directCommands?: readonly string[];
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
  /** The user-space part of cpuUsPerOp (JavaScript, ioredis, V8; the rest is kernel time: socket syscalls). */
  userUsPerOp: number;
  /** Redis time per operation, µs: INFO commandstats usec of top-level commands over the run ÷ ops. */
  redisUsPerOp: number;
  /** Redis process CPU per operation, µs (INFO cpu; includes socket I/O and parsing). */
  redisCpuUsPerOp: number;
}

/**
 * Commands whose `usec` in INFO commandstats already includes the commands they run: a script's
 * inner commands (and a transaction's) are counted twice in commandstats, once on their own line
 * and once inside the EVALSHA / EXEC line.
 */
const CONTAINERS = /^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro|exec)$/;

/**
 * Redis time spent on the contender's commands, µs: the `usec` of top-level commands in INFO
 * commandstats (scripts and transactions when there are any, plus the commands named in
 * `direct`; otherwise every command), leaving out the measuring commands themselves.
 */
async function redisUsec(admin: Redis, direct: readonly string[] = []): Promise<number> {
  const info = await admin.info('commandstats');
  const stats: Array<[string, number]> = [];
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=\d+,usec=(\d+),/.exec(line.trim());
    if (match && !/^(info|config\|resetstat|config)$/.test(match[1])) stats.push([match[1], Number(match[2])]);
  }
  const scripted = stats.some(([name]) => CONTAINERS.test(name));
  return stats.reduce((sum, [name, usec]) => (!scripted || CONTAINERS.test(name) || direct.includes(name) ? sum + usec : sum), 0);
}

/** Redis process CPU (user + system) in µs, from INFO cpu: includes reading and writing sockets. */
async function redisCpuUs(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return (user + sys) * 1e6;
}

/** Runs `workload.ops` operations of `contender`, keeping `concurrency` in flight. */
export async function measure(contender: Contender, workload: Workload, admin: Redis): Promise<Sample> {
  await admin.config('RESETSTAT');
  const redisCpuBefore = await redisCpuUs(admin);
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
  const redisCpu = (await redisCpuUs(admin)) - redisCpuBefore;
  const usec = await redisUsec(admin, contender.directCommands);
  return {
    opsPerSec: workload.ops / (elapsedNs / 1e9),
    cpuUsPerOp: (cpu.user + cpu.system) / workload.ops,
    userUsPerOp: cpu.user / workload.ops,
    redisUsPerOp: usec / workload.ops,
    redisCpuUsPerOp: redisCpu / workload.ops,
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
  userUsPerOp: number;
  redisUsPerOp: number;
  redisCpuUsPerOp: number;
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
      userUsPerOp: median(s.map((x) => x.userUsPerOp)),
      redisUsPerOp: median(s.map((x) => x.redisUsPerOp)),
      redisCpuUsPerOp: median(s.map((x) => x.redisCpuUsPerOp)),
      samples: s,
    };
  });
}
