import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { FeatureOptions } from './features';

/** A Redis Cluster to connect to: seed nodes and ioredis `ClusterOptions`. */
export interface RedisLuaClusterConnection {
  /** Seed nodes, e.g. `[{ host: '127.0.0.1', port: 7000 }]` or `['redis://127.0.0.1:7000']`. */
  nodes: ClusterNode[];
  options?: ClusterOptions;
}

/**
 * Options of {@link RedisLuaModule.forRoot}. Give at most one connection kind
 * (`url`, `redis`, `cluster` or `client`); with none at all, the module connects to `redis://127.0.0.1:6379`
 * (an option that is present but `undefined` or empty fails boot). The features' sections
 * (`rateLimit`, `lock`) come from {@link FeatureOptions}.
 */
export interface RedisLuaModuleOptions extends FeatureOptions {
  /** A `redis://` or `rediss://` URL. */
  url?: string;
  /** ioredis options for a standalone server. */
  redis?: RedisOptions;
  /** A Redis Cluster. Scripts are loaded on every master. */
  cluster?: RedisLuaClusterConnection;
  /** A client the application already has. The module uses it and never closes it. */
  client?: Redis | Cluster;
  /**
   * Namespace of every key the module writes (default `nrl`): keys look like
   * `<keyPrefix>:<feature>:{<tag>}:...`. No braces, no whitespace, at most 64 characters.
   */
  keyPrefix?: string;
  /** Log every script call (name, keys, duration) through Nest's Logger, context `RedisLua`; implies `report`. */
  debug?: boolean;
  /**
   * Log at boot, through Nest's Logger (context `RedisLua`), one table of what the module applies:
   * every rate-limited handler (rules, algorithm, key), every locked handler (resource, TTL, wait)
   * and every registered script. Default `false` (on with `debug`).
   */
  report?: boolean;
  /**
   * Do not wait for Redis at boot. By default the module waits until Redis answers and every script is
   * loaded (SCRIPT LOAD on the server or every cluster master), and boot fails with a clear error if that
   * takes longer than `bootTimeoutMs`. With `lazyConnect: true` boot never touches Redis; scripts load on
   * first use.
   */
  lazyConnect?: boolean;
  /** How long boot waits for Redis before failing (default 10000 ms). */
  bootTimeoutMs?: number;
  /**
   * Send the script calls made in one pass of the event loop together (default `true`): the
   * connection's socket is corked before a call is written and flushed after every 16 calls and once
   * the I/O callbacks ready now have run (`setImmediate`), so a burst of calls (say, the rate checks of
   * the requests read in one pass) costs a few system calls instead of one each, on the client and on
   * Redis. A call waits at most for 15 more calls or the end of the current poll phase; commands keep
   * their order. Applies to the commands written to the socket meanwhile, the application's own
   * included. `false` writes each call at once.
   */
  coalesceWrites?: boolean;
}

/** Defaults applied to the options a user gives. */
export const DEFAULT_KEY_PREFIX = 'nrl';
export const DEFAULT_BOOT_TIMEOUT_MS = 10_000;
