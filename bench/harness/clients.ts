/** Redis clients for the benchmarks: every contender gets its own connection with the same settings. */
import { Redis, type RedisOptions } from 'ioredis';

export interface BenchRedis {
  port: number;
  /** A new connection; all are closed by closeAll(). */
  client(options?: RedisOptions): Redis;
  closeAll(): Promise<void>;
}

export function benchRedis(port: number, defaults: RedisOptions): BenchRedis {
  const opened: Redis[] = [];
  return {
    port,
    client: (options = {}) => {
      const client = new Redis({ host: '127.0.0.1', port, ...defaults, ...options });
      opened.push(client);
      return client;
    },
    closeAll: async () => {
      await Promise.all(opened.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}

/** The "return 1" script: the cost of one EVALSHA round trip through ioredis, with no work in Redis. */
export function ceilingScript(client: Redis): (key: string) => Promise<unknown> {
  if (!('benchCeiling' in client)) client.defineCommand('benchCeiling', { numberOfKeys: 1, lua: 'return 1' });
  const run = (client as unknown as { benchCeiling(key: string): Promise<unknown> }).benchCeiling.bind(client);
  return run;
}
