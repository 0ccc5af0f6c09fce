import type { ConfigService } from '@nestjs/config';
import type { RateLimitFailMode, RateLimitModuleOptions, RedisLuaModuleOptions } from 'nest-redis-lua';

/**
 * The sample's Redis settings, read from the environment through ConfigService:
 * - `REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001` for a Redis Cluster, or
 * - `REDIS_URL=redis://127.0.0.1:6380` for one server;
 * - `REDIS_KEY_PREFIX` (default `sample`): the namespace of every key the app writes;
 * - `RATE_LIMIT_FAIL_MODE` (`open`, the default, or `closed`) and `RATE_LIMIT_TIMEOUT_MS` (default
 *   250): what the rate limits do when Redis does not answer in time (the module validates both).
 * One of the first two is required: the app never picks a server nobody named (`npm run sample`
 * starts a private redis-server and sets REDIS_URL when neither is given).
 */
export function redisOptionsFromConfig(config: Pick<ConfigService, 'get'>): RedisLuaModuleOptions {
  const keyPrefix = config.get<string>('REDIS_KEY_PREFIX') || 'sample';
  const failMode = config.get<string>('RATE_LIMIT_FAIL_MODE') as RateLimitFailMode | undefined;
  const timeoutMs = config.get<string>('RATE_LIMIT_TIMEOUT_MS');
  const rateLimit: RateLimitModuleOptions = { ...(failMode && { failMode }), ...(timeoutMs && { timeoutMs: Number(timeoutMs) }) };
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
      rateLimit,
    };
  }
  const url = config.get<string>('REDIS_URL');
  if (!url)
    throw new Error(
      'the sample app needs REDIS_URL (one server) or REDIS_CLUSTER_NODES (host:port,host:port): npm run sample sets REDIS_URL to a private redis-server',
    );
  return { url, keyPrefix, rateLimit };
}
