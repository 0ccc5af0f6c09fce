import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { RedisLuaEventListener } from '../core/events';
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
  /**
   * How scripts run (default `'eval'`):
   * - `'eval'`: SCRIPT LOAD at boot, then EVALSHA; when a server lacks a script (a restart, `SCRIPT
   *   FLUSH`, a failover to a replica, a new node) the call is sent once as EVAL, which runs and caches it.
   * - `'functions'` (Redis 7+): the scripts form one Redis Functions library, `nrl_<version>_<hash>`,
   *   loaded at boot with FUNCTION LOAD on the server or every master where it is missing (REPLACE
   *   where its code differs), then called with FCALL (FCALL_RO for read-only scripts). Functions are
   *   stored in the dataset: persisted and replicated, so restarts, `SCRIPT FLUSH` and failovers need
   *   no reload. When a call finds the library missing (`FUNCTION FLUSH`, an empty node) it is loaded
   *   there and the call sent again, once. A library of another version or app stays for the
   *   instances that use it (boot logs their names); one nothing uses is safe to `FUNCTION DELETE`.
   * `forFeature` scripts run the same way.
   */
  scripts?: 'eval' | 'functions';
  /**
   * Where read-only calls go on a Redis Cluster (default `'master'`). `'replica'` sends the read-only
   * scripts and reads (leaderboard `top` / `around` / `rank` / `score` / `history` / `count`, counter
   * `get`, and `forFeature` scripts declared `#!lua flags=no-writes`) to a replica of the key's master
   * (EVALSHA_RO / FCALL_RO), a slot without replicas to its master; every write stays on the masters.
   * Replication is asynchronous: a read may not yet see a write acknowledged a moment ago (typically
   * under a millisecond; longer while a replica is behind or after a failover). Needs option `cluster`.
   */
  readFrom?: 'master' | 'replica';
  /**
   * Called synchronously with every {@link RedisLuaEvent}: rate-limit decisions, lock acquisitions,
   * holds and losses, cache outcomes, counter rejections, leaderboard submits, script calls and
   * reloads, calls Redis could not answer. For apps without OpenTelemetry (a log line, your own
   * metrics). Keep it cheap: it runs on the request's path. What it throws is logged once and
   * ignored; it never changes an answer.
   */
  onEvent?: RedisLuaEventListener;
  /**
   * Record the library's OpenTelemetry metrics (README, "Observability") when `@opentelemetry/api` is
   * installed and a meter provider is registered before the application is created (default
   * `true`; without a provider nothing is recorded, at no cost). `false` records none.
   */
  metrics?: boolean;
  /**
   * One OpenTelemetry client span per script call (`db.system.name: redis`, `db.operation.name`
   * the command, `db.stored_procedure.name` the script), child of the active span. Default `false`.
   * Needs `@opentelemetry/api` (boot fails without it) and a registered tracer provider.
   */
  tracing?: boolean;
}

/** Defaults applied to the options a user gives. */
export const DEFAULT_KEY_PREFIX = 'nrl';
export const DEFAULT_BOOT_TIMEOUT_MS = 10_000;
