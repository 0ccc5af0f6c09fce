import { Cluster, Redis, type ClusterOptions, type Command, type RedisOptions } from 'ioredis';
import type { RedisLuaModuleOptions } from './redis-lua-options.interface';
import { fail, inputSite } from '../core/validation';

const CONNECTION_KINDS = ['url', 'redis', 'cluster', 'client'] as const;

/**
 * Defaults for the connections the module opens itself (a user's own options win):
 * - a command written but unanswered when a connection drops is NOT sent again on reconnect,
 *   because a resent script would run twice (a rate-limit hit counted twice, a counter bumped twice);
 * - such a command is rejected when the connection closes (`maxRetriesPerRequest: 0`): without it,
 *   ioredis drops it on reconnect and its promise never settles. Commands queued while Redis is
 *   unreachable are rejected at each failed reconnection attempt instead of after 20 of them (more than
 *   a minute), so a call fails fast during an outage and never runs long after its caller gave up;
 * - reconnection attempts are at most 500 ms apart (ioredis: up to 2 s), so a call queued while Redis
 *   is unreachable is rejected within about half a second, however long the outage has lasted;
 * - no command waits longer than `commandTimeout` (5 s) for a reply (a frozen or overloaded server);
 * - `disconnect()` on a socket that already died (Redis unreachable at boot) does not hold the process
 *   open for ioredis's default 2 s.
 */
/** The longest pause between two reconnection attempts of a connection the module opened. */
const MAX_RECONNECT_DELAY_MS = 500;

const OWNED_CONNECTION_DEFAULTS: RedisOptions = {
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  retryStrategy: (attempt: number) => Math.min(attempt * 50, MAX_RECONNECT_DELAY_MS),
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

/**
 * `readFrom: 'replica'`: the commands the module marks with {@link readFromReplica} (read-only scripts
 * and reads) go to a replica of their slot's master, any other read-only command (the application's
 * own GET on the same client) to the master, as without the option. A slot without replicas is read
 * from its master.
 */
const REPLICA_READS = new WeakSet<Command>();

/** Marks a read-only command for a replica (effective with `readFrom: 'replica'` only). */
export function readFromReplica(command: Command): Command {
  REPLICA_READS.add(command);
  return command;
}

/** ioredis `scaleReads`: called with the slot's nodes, master first, for read-only commands. */
function toReplicaIfMarked(nodes: Redis[], command: Command): Redis | Redis[] {
  return REPLICA_READS.has(command) && nodes.length > 1 ? nodes.slice(1) : nodes[0];
}

/** The module's Redis client and whether the module opened it (and so must close it). */
export interface RedisConnection {
  readonly client: Redis | Cluster;
  readonly owned: boolean;
  /** Where it points, for error messages (no credentials). */
  readonly description: string;
}

/** The address used when no connection option is given at all. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Checks the connection options: at most one kind, and nothing that would silently point the client
 * at a server nobody named. An option that is present but `undefined`, `null` or empty (typically an
 * unset environment variable) fails boot naming it; only options without any connection key use
 * {@link DEFAULT_REDIS_URL}. The same for `host`, `port` and `path` inside `redis` and for cluster nodes,
 * where ioredis would otherwise fall back to localhost:6379.
 */
/** Connection options are module options: errors say `nest-redis-lua: option "..."` and carry the field. */
const SITE = inputSite('');

export function validateConnectionOptions(options: RedisLuaModuleOptions): void {
  const present = CONNECTION_KINDS.filter((kind) => kind in options);
  for (const kind of present) {
    const value: unknown = options[kind];
    if (value === undefined || value === null || value === '') {
      fail(
        SITE,
        kind,
        `option "${kind}" is ${value === '' ? 'an empty string' : String(value)} (an unset environment variable?): ` +
          `give a value, or leave the option out to use ${DEFAULT_REDIS_URL}`,
      );
    }
  }
  if (present.length > 1) {
    fail(
      SITE,
      present[1],
      `give exactly one connection option, got ${present.map((k) => `"${k}"`).join(' and ')} (choose one of url, redis, cluster, client)`,
    );
  }
  if (options.url !== undefined) checkUrl(options.url, 'url');
  if (options.redis !== undefined) checkAddress(options.redis as Record<string, unknown>, 'redis');
  if (options.cluster !== undefined) {
    const { nodes } = options.cluster;
    if (!Array.isArray(nodes) || nodes.length === 0) fail(SITE, 'cluster.nodes', 'option "cluster.nodes" must list at least one node');
    nodes.forEach((node: unknown, i) => {
      const field = `cluster.nodes[${i}]`;
      if (typeof node === 'string') checkNodeString(node, field);
      else if (typeof node === 'number') checkPort(node, field);
      else if (typeof node === 'object' && node !== null) checkAddress(node as Record<string, unknown>, field);
      else fail(SITE, field, `option "${field}" must be a URL, "host:port", a port or { host, port }, got ${JSON.stringify(node)}`);
    });
  }
  if (options.readFrom === 'replica') {
    if (options.cluster === undefined) {
      fail(
        SITE,
        'readFrom',
        `option "readFrom": 'replica' sends read-only calls to the replicas of a Redis Cluster the module connects to itself: give option "cluster"` +
          (present.length ? `, got "${present[0]}"` : ''),
      );
    }
    if (options.cluster.options?.scaleReads !== undefined) {
      fail(
        SITE,
        'cluster.options.scaleReads',
        `option "cluster.options.scaleReads" cannot be combined with option "readFrom": 'replica' (which routes the module's read-only calls itself); leave one out`,
      );
    }
  }
  // Duck-typed: the application's ioredis may be another copy than ours, where instanceof fails.
  const client = options.client as Partial<Redis> | undefined;
  if (client !== undefined && (typeof client.evalsha !== 'function' || typeof client.duplicate !== 'function')) {
    fail(SITE, 'client', 'option "client" must be an ioredis Redis or Cluster instance');
  }
}

function checkUrl(url: unknown, field: string): void {
  if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
    fail(
      SITE,
      field,
      `option "${field}" must start with redis:// or rediss://, got ${typeof url === 'string' ? `"${redactUrl(url)}"` : String(url)}`,
    );
  }
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    fail(SITE, field, `option "${field}" is not a valid URL: "${redactUrl(url)}"`);
  }
  // ioredis would connect to localhost when the URL names no host.
  if (host === '') fail(SITE, field, `option "${field}" names no host: "${redactUrl(url)}"`);
}

/**
 * A cluster node given as a string: a redis:// URL is checked as such; anything else ioredis parses
 * itself (`host:port`, a port, a host, `[::1]:7000`), but an empty string or an empty port would
 * silently become localhost or port 6379.
 */
function checkNodeString(node: string, field: string): void {
  if (/^rediss?:\/\//.test(node)) return checkUrl(node, field);
  if (node.trim() === '' || node.endsWith(':')) {
    fail(SITE, field, `option "${field}" must name a node (a redis:// URL, "host:port", a port or { host, port }), got "${node}"`);
  }
}

/** `host` / `port` / `path`, where present, must be real values (ioredis falls back to localhost:6379). */
function checkAddress(address: Record<string, unknown>, field: string): void {
  for (const key of ['host', 'path'] as const) {
    if (key in address && (typeof address[key] !== 'string' || address[key] === '')) {
      fail(
        SITE,
        `${field}.${key}`,
        `option "${field}.${key}" is ${address[key] === '' ? 'an empty string' : String(address[key])}: give a value or leave it out`,
      );
    }
  }
  if ('port' in address) checkPort(address.port, `${field}.port`);
}

function checkPort(port: unknown, field: string): void {
  const value = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65_535) {
    fail(SITE, field, `option "${field}" must be a port number (1-65535), got ${JSON.stringify(port) ?? 'undefined'}`);
  }
}

/** Opens (or adopts) the client described by validated options. */
export function createConnection(options: RedisLuaModuleOptions): RedisConnection {
  if (options.client) {
    return { client: options.client, owned: false, description: `${describeClient(options.client)} via the application's client` };
  }
  if (options.cluster) {
    const { nodes, options: clusterOptions } = options.cluster;
    const client = new Cluster(nodes, {
      ...OWNED_CLUSTER_DEFAULTS,
      ...clusterOptions,
      ...(options.readFrom === 'replica' ? { scaleReads: toReplicaIfMarked } : {}),
      redisOptions: { ...OWNED_CONNECTION_DEFAULTS, ...clusterOptions?.redisOptions },
    });
    // With retryDelayOnFailover 0, nothing else refreshes the slot map soon after a master dies (only the
    // periodic slotsRefreshInterval): ask for it on every node error, so calls reach the new master as
    // soon as the cluster has promoted it (ioredis coalesces concurrent refreshes).
    client.on('node error', () => client.refreshSlotsCache());
    return { client, owned: true, description: describeClient(client) };
  }
  if (options.redis) {
    const client = new Redis({ ...OWNED_CONNECTION_DEFAULTS, ...options.redis });
    return { client, owned: true, description: describeClient(client) };
  }
  const url = options.url ?? DEFAULT_REDIS_URL;
  return { client: new Redis(url, OWNED_CONNECTION_DEFAULTS), owned: true, description: redactUrl(url) };
}

/** Where a client points, without credentials: `host:port`, a socket path, or a cluster's seed nodes. */
function describeClient(client: Redis | Cluster): string {
  if (isCluster(client)) {
    const nodes = (client as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
    return `cluster ${nodes.map(describeNode).join(', ')}`;
  }
  const { host, port, path } = client.options;
  return path ? `unix:${path}` : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

function describeNode(node: unknown): string {
  if (typeof node === 'string') return redactUrl(node);
  if (typeof node === 'number') return `127.0.0.1:${node}`;
  const { host, port } = node as { host?: string; port?: number };
  return `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

/** Closes a client: QUIT when connected (pending replies arrive first), otherwise drop the socket. */
export async function closeClient(client: Redis | Cluster): Promise<void> {
  if (client.status !== 'end') {
    if (client.status !== 'ready') {
      client.disconnect();
    } else {
      // With auto-pipelining, commands issued in this tick are still queued: QUIT would overtake them.
      for (let i = 0; i < 10 && client.autoPipelineQueueSize > 0; i++) await new Promise((resolve) => setImmediate(resolve));
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    }
  }
  if (client instanceof Cluster) await stopSlotsRefresh(client);
}

/**
 * ioredis's periodic slot refresh (`slotsRefreshInterval`) re-arms its timer when a refresh ends,
 * also one that was still waiting for an unresponsive node when the client quit: after that, every
 * round fails at once ("Cluster is disconnected") and arms the next, forever, and the process never
 * exits by itself (seen after a cluster paused for more than a second). Waits for such a refresh to
 * end (at most `slotsRefreshTimeout`, 1 s by default), then clears the timer it armed.
 */
async function stopSlotsRefresh(cluster: Cluster): Promise<void> {
  const internals = cluster as unknown as { isRefreshing?: boolean; clearNodesRefreshInterval?: () => void };
  while (internals.isRefreshing === true) await new Promise((resolve) => setTimeout(resolve, 10));
  internals.clearNodesRefreshInterval?.();
}

/** Removes a password from a URL before it goes into a message. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** True for an ioredis Cluster client. */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return client.isCluster;
}
