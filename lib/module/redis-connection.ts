import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisLuaModuleOptions } from './redis-lua-options.interface';

const CONNECTION_KINDS = ['url', 'redis', 'cluster', 'client'] as const;

/**
 * Defaults for the connections the module opens itself (a user's own options win):
 * - a command written but unanswered when a connection drops is NOT sent again on reconnect,
 *   because a resent script would run twice (a rate-limit hit counted twice, a counter bumped twice);
 * - such a command is rejected when the connection closes (`maxRetriesPerRequest: 0`): without it,
 *   ioredis drops it on reconnect and its promise never settles. Commands queued while Redis is
 *   unreachable are rejected at each failed reconnection attempt instead of after 20 of them (more than
 *   a minute), so a call fails fast during an outage and never runs long after its caller gave up;
 * - no command waits longer than `commandTimeout` (5 s) for a reply (a frozen or overloaded server);
 * - `disconnect()` on a socket that already died (Redis unreachable at boot) does not hold the process
 *   open for ioredis's default 2 s.
 */
const OWNED_CONNECTION_DEFAULTS: RedisOptions = {
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 5_000,
  disconnectTimeout: 250,
  connectionName: 'nest-redis-lua',
};

// Script calls do not go through ioredis auto-pipelining (`enableAutoPipelining`), even on a client
// that enables it: the engine writes them as Commands itself, batched per pass of the event loop by
// its WriteCoalescer (see lib/scripts/write-coalescer.ts; auto-pipelining builds a Pipeline per batch,
// never flushes before the end of the pass and, on a cluster, groups EVALSHA by SHA instead of slot,
// redis/ioredis#2109). An application's own commands on an auto-pipelining client are flushed by
// `closeClient` before QUIT.

/**
 * Cluster connections: a command whose node connection closes while it is in flight (a master killed
 * or failed over) is rejected, not sent again after `retryDelayOnFailover` (ioredis's default, 100 ms):
 * the script may have run on the old master, and a resend would run it twice. The slot map is
 * refreshed on every node error instead (see createConnection).
 */
const OWNED_CLUSTER_DEFAULTS: ClusterOptions = {
  retryDelayOnFailover: 0,
  // When no node is reachable the Cluster client queues commands itself, where the per-node
  // commandTimeout and maxRetriesPerRequest do not apply: a call would wait the whole outage and run
  // long after its caller gave up. Fail it at once instead (boot waits for the cluster to be ready).
  enableOfflineQueue: false,
  // The slot map is also re-read every second (ioredis's default is 5 s), so calls find a promoted
  // replica within about a second of the promotion.
  slotsRefreshInterval: 1_000,
};

/** The module's Redis client and whether the module opened it (and so must close it). */
export interface RedisConnection {
  readonly client: Redis | Cluster;
  readonly owned: boolean;
  /** Where it points, for error messages (no credentials). */
  readonly description: string;
}

/** Checks the connection options: at most one kind, a redis:// or rediss:// URL. */
export function validateConnectionOptions(options: RedisLuaModuleOptions): void {
  const given = CONNECTION_KINDS.filter((kind) => options[kind] !== undefined);
  if (given.length > 1) {
    throw new Error(
      `nest-redis-lua: give exactly one connection option, got ${given.map((k) => `"${k}"`).join(' and ')} (choose one of url, redis, cluster, client)`,
    );
  }
  if (options.url !== undefined && !/^rediss?:\/\//.test(options.url)) {
    throw new Error(`nest-redis-lua: option "url" must start with redis:// or rediss://, got "${redactUrl(options.url)}"`);
  }
  if (options.cluster !== undefined && (!Array.isArray(options.cluster.nodes) || options.cluster.nodes.length === 0)) {
    throw new Error('nest-redis-lua: option "cluster.nodes" must list at least one node');
  }
  // Duck-typed: the application's ioredis may be another copy than ours, where instanceof fails.
  const client = options.client as Partial<Redis> | undefined;
  if (client !== undefined && (typeof client.evalsha !== 'function' || typeof client.duplicate !== 'function')) {
    throw new Error('nest-redis-lua: option "client" must be an ioredis Redis or Cluster instance');
  }
}

/** Opens (or adopts) the client described by validated options. */
export function createConnection(options: RedisLuaModuleOptions): RedisConnection {
  if (options.client) {
    return { client: options.client, owned: false, description: 'the application\'s client' };
  }
  if (options.cluster) {
    const { nodes, options: clusterOptions } = options.cluster;
    const client = new Cluster(nodes, {
      ...OWNED_CLUSTER_DEFAULTS,
      ...clusterOptions,
      redisOptions: { ...OWNED_CONNECTION_DEFAULTS, ...clusterOptions?.redisOptions },
    });
    // With retryDelayOnFailover 0, nothing else refreshes the slot map soon after a master dies (only the
    // periodic slotsRefreshInterval): ask for it on every node error, so calls reach the new master as
    // soon as the cluster has promoted it (ioredis coalesces concurrent refreshes).
    client.on('node error', () => client.refreshSlotsCache());
    return { client, owned: true, description: `cluster ${JSON.stringify(nodes)}` };
  }
  if (options.redis) {
    const client = new Redis({ ...OWNED_CONNECTION_DEFAULTS, ...options.redis });
    const where = options.redis.path ?? `${options.redis.host ?? '127.0.0.1'}:${options.redis.port ?? 6379}`;
    return { client, owned: true, description: where };
  }
  const url = options.url ?? 'redis://127.0.0.1:6379';
  return { client: new Redis(url, OWNED_CONNECTION_DEFAULTS), owned: true, description: redactUrl(url) };
}

/** Closes a client: QUIT when connected (pending replies arrive first), otherwise drop the socket. */
export async function closeClient(client: Redis | Cluster): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  // With auto-pipelining, commands issued in this tick are still queued: QUIT would overtake them.
  for (let i = 0; i < 10 && client.autoPipelineQueueSize > 0; i++) await new Promise((resolve) => setImmediate(resolve));
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/** Removes a password from a URL before it goes into a message. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** True for an ioredis Cluster client. */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster;
}
