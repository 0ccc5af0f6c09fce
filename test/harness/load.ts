/**
 * A bounded load loop for fault-injection tests: keeps `concurrency` operations in flight until
 * `until()` resolves (or `maxOps` ran), and records failures, error messages, latencies and the
 * unhandled rejections seen meanwhile.
 */
import { Lateness } from './timing';

export interface LoadResult<T> {
  operations: number;
  failures: number;
  /** Error message → count. */
  errors: Map<string, number>;
  maxLatencyMs: number;
  /** How late this process's timers ran at worst during the load (see ./timing): latency bounds add it. */
  maxLateMs: number;
  unhandledRejections: number;
  results: T[];
}

export interface LoadOptions<T> {
  concurrency: number;
  /** One operation; `i` counts from 0. */
  op: (i: number) => Promise<T>;
  /** Resolves when the load should stop (e.g. after a fault and the recovery checks). */
  until: Promise<unknown>;
  /** Upper bound on operations, so a loop never runs away. */
  maxOps?: number;
}

export async function runLoad<T>({ concurrency, op, until, maxOps = 1_000_000 }: LoadOptions<T>): Promise<LoadResult<T>> {
  const result: LoadResult<T> = {
    operations: 0,
    failures: 0,
    errors: new Map(),
    maxLatencyMs: 0,
    maxLateMs: 0,
    unhandledRejections: 0,
    results: [],
  };
  const lateness = new Lateness();
  let stop = false;
  const onRejection = (): void => {
    result.unhandledRejections += 1;
  };
  process.on('unhandledRejection', onRejection);
  const halt = (): void => {
    stop = true;
  };
  until.then(halt, halt);
  const worker = async (): Promise<void> => {
    while (!stop && result.operations < maxOps) {
      const i = result.operations++;
      const started = performance.now();
      try {
        result.results.push(await op(i));
      } catch (err) {
        result.failures += 1;
        const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        result.errors.set(message, (result.errors.get(message) ?? 0) + 1);
      } finally {
        result.maxLatencyMs = Math.max(result.maxLatencyMs, performance.now() - started);
      }
      // Yield so a loop of synchronously failing calls cannot starve the timers it waits for.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    process.off('unhandledRejection', onRejection);
    result.maxLateMs = lateness.stop();
  }
  return result;
}
