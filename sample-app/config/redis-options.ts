import type { ConfigService } from '@nestjs/config';
import type { RedisLuaModuleOptions } from 'nest-redis-lua';

/**
 * The sample's Redis settings, read from the environment through ConfigService:
 * - `REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001` for a Redis Cluster, or
 * - `REDIS_URL=redis://127.0.0.1:6379` for one server (the default);
 * - `REDIS_KEY_PREFIX` (default `sample`): the namespace of every key the app writes.
 */
export function redisOptionsFromConfig(config: Pick<ConfigService, 'get'>): RedisLuaModuleOptions {
  const keyPrefix = config.get<string>('REDIS_KEY_PREFIX') || 'sample';
  const nodes = config.get<string>('REDIS_CLUSTER_NODES');
  if (nodes) {
    return {
      cluster: {
        nodes: nodes.split(',').map((node) => {
          const [host, port] = node.trim().split(':');
          return { host, port: Number(port) };
        }),
      },
      keyPrefix,
    };
  }
  return { url: config.get<string>('REDIS_URL') || 'redis://127.0.0.1:6379', keyPrefix };
}
