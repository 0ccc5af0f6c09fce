import type { Logger } from '@nestjs/common';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import type { LuaScriptEngine } from '../scripts/lua-script.engine';
import { outcomeUnknown } from '../scripts/lua-script.errors';
import type { LeaseStore, ReplicaRequirement } from './leases';
import { LockReplicationError } from './lock.errors';
import type { ReplicaAcks } from './replica-acks';

/** The keys of a resource a lease script may touch (one hash tag per resource). */
type KeyRole = 'lock' | 'fence' | 'waiters' | 'readers' | 'writers' | 'queue' | 'queueExpiry';
const KEY_SUFFIX: Record<KeyRole, string | undefined> = {
  lock: undefined,
  fence: 'fence',
  waiters: 'waiters',
  readers: 'readers',
  writers: 'writers',
  queue: 'queue',
  queueExpiry: 'queue-expiry',
};

/**
 * The kinds of lease a store serves, each with its scripts and the keys they take, in order:
 * - `lock`: exclusive (write) locks, `<prefix>:lock:{<resource>}` holding the owner's token, lua/lock/;
 * - `read`: read locks of the same resources, the readers' sorted set `…:readers`; a write lock waits
 *   for the readers, readers for the writer and for waiting writers (`…:writers`);
 * - `fair`: write locks taken in arrival order (lua/lock/fair-acquire.lua): the same lock key, plus
 *   the queue of waiting tickets `…:queue` and their expiries `…:queue-expiry`; released like `lock`;
 * - `semaphore`: `<prefix>:sem:{<name>}`, the holders' sorted set, lua/semaphore/.
 * Each has `…:fence`, `…:waiters` and the release channel `…:released`; unwait is lua/lock/unwait.lua.
 * A resource's releases name the fair queue's head in their notice, whichever kind releases.
 */
export const LEASE_KINDS = {
  lock: {
    feature: 'lock',
    scripts: { acquire: 'lock/acquire', release: 'lock/release', extend: 'lock/extend' },
    keys: {
      acquire: ['lock', 'fence', 'waiters', 'readers', 'writers'],
      release: ['lock', 'waiters', 'queue'],
      extend: ['lock'],
      unwait: ['waiters', 'writers', 'queue'],
    },
    permits: false,
    fair: false,
  },
  fair: {
    feature: 'lock',
    scripts: { acquire: 'lock/fair-acquire', release: 'lock/release', extend: 'lock/extend' },
    keys: {
      acquire: ['lock', 'fence', 'waiters', 'readers', 'writers', 'queue', 'queueExpiry'],
      release: ['lock', 'waiters', 'queue'],
      extend: ['lock'],
      unwait: ['waiters', 'writers', 'queue', 'queueExpiry'],
    },
    permits: false,
    fair: true,
  },
  read: {
    feature: 'lock',
    scripts: { acquire: 'lock/read-acquire', release: 'lock/read-release', extend: 'semaphore/extend' },
    keys: {
      acquire: ['readers', 'fence', 'waiters', 'lock', 'writers'],
      release: ['readers', 'waiters', 'queue'],
      extend: ['readers'],
      unwait: ['waiters'],
    },
    permits: false,
    fair: false,
  },
  semaphore: {
    feature: 'sem',
    scripts: { acquire: 'semaphore/acquire', release: 'semaphore/release', extend: 'semaphore/extend' },
    keys: { acquire: ['lock', 'fence', 'waiters'], release: ['lock', 'waiters'], extend: ['lock'], unwait: ['waiters'] },
    permits: true,
    fair: false,
  },
} as const satisfies Record<
  string,
  {
    feature: string;
    scripts: Record<'acquire' | 'release' | 'extend', string>;
    keys: Record<'acquire' | 'release' | 'extend' | 'unwait', readonly KeyRole[]>;
    permits: boolean;
    /** Waiters queue with a ticket (ARGV[6], ARGV[7] of fair-acquire.lua). */
    fair: boolean;
  }
>;
export type LeaseKind = (typeof LEASE_KINDS)[keyof typeof LEASE_KINDS];
/** The fence key outlives the latest acquisition by max(this, 2 × ttlMs). */
const MIN_FENCE_KEY_TTL_MS = 60_000;
/**
 * The waiter counter outlives a waiter's remaining wait by this much: a bound on how long a crashed
 * waiter (which never uncounts itself) keeps releases publishing notices.
 */
const WAITER_COUNT_MARGIN_MS = 5_000;
/** ARGV[4] of acquire.lua (absent for a plain attempt): a subscribed waiter not counted yet, a counted one. */
const NEW_WAITER = '1';
const PLAIN_ATTEMPT = '0';
const COUNTED_WAITER = '2';

/**
 * A subscribed waiter's part in the waiter count. The protocol, whose Lua side is lua/lock/acquire.lua,
 * release.lua and unwait.lua:
 * - A release publishes its notice only while the resource's `…:waiters` counter is above 0, so an
 *   uncontended acquire + release costs no PUBLISH (on a cluster one crosses the bus to every node).
 * - A waiter subscribes first, then attempts again with `count`: if the lock is still held, the same
 *   script call INCRs the counter (ARGV[4] = new waiter), so no release that comes after the failed
 *   attempt can miss it; `counted` turns true. Later attempts say it is counted already (no second
 *   INCR) and refresh the counter's TTL (its remaining wait + {@link WAITER_COUNT_MARGIN_MS}).
 * - The waiter uncounts itself when it takes the lock (in the acquiring script), and when it gives up
 *   or is aborted (unwait.lua). A crashed waiter's count expires by that TTL; until then releases
 *   merely publish notices nobody needs.
 */
export interface WaiterCount {
  /** The counter holds this waiter: it must uncount itself when it stops waiting without the lock. */
  counted: boolean;
  /** When the waiter stops waiting (performance.now() time). */
  readonly deadline: number;
  /** The waiter's place in a fair queue (random; one per waiting acquire call), '' for other leases. */
  readonly ticket: string;
}

/**
 * How long a fair waiter's queue entry lives without renewal: a waiter that died blocks the queue at
 * most this long. Every attempt renews it; a waiting fair waiter attempts at least every
 * {@link FAIR_HEARTBEAT_MS}.
 */
const FAIR_ENTRY_TTL_MS = 5_000;
/** The longest a fair waiter goes without an attempt (which renews its queue entry). */
export const FAIR_HEARTBEAT_MS = 1_000;

/** acquire.lua: `[1, fence]` when taken, `[0, holder's PTTL]` (a semaphore: ms until its first holder expires) when held. */
export type AcquireReply = [1, string] | [0, number];

/**
 * The Redis side of locks or semaphores (see {@link LEASE_KINDS}): the keys of a name (lease, fence,
 * waiter counter, release channel, one hash tag), the four scripts, and the waiter count. A call that
 * takes or gives up a lease but loses its reply is undone by token here (see {@link LockStore.attempt}).
 */
export class LockStore implements LeaseStore {
  private readonly acquireScript: LuaScript<AcquireReply>;
  private readonly releaseScript: LuaScript<0 | 1>;
  private readonly extendScript: LuaScript<0 | 1>;
  private readonly unwaitScript: LuaScript<number>;
  /** The key of a name's lease (a lock's value is the holder's token; a semaphore's, its holders). */
  readonly lockKey: (resource: string) => string;
  readonly channel: (resource: string) => string;
  private readonly acquireKeys: (resource: string) => string[];
  private readonly releaseKeys: (resource: string) => string[];
  private readonly extendKeys: (resource: string) => string[];
  private readonly unwaitKeys: (resource: string) => string[];

  constructor(
    engine: LuaScriptEngine,
    keys: KeyBuilder,
    private readonly log: Logger,
    private readonly kind: LeaseKind = LEASE_KINDS.lock,
    /** Where acquisitions with `replicas` run (kinds that offer them). */
    private readonly acks?: ReplicaAcks,
  ) {
    const { feature, scripts } = kind;
    const factories = new Map<KeyRole, (resource: string) => string>();
    const factory = (role: KeyRole): ((resource: string) => string) => {
      let made = factories.get(role);
      if (!made) {
        const suffix = KEY_SUFFIX[role];
        made = suffix === undefined ? keys.keyFactory(feature) : keys.keyFactory(feature, suffix);
        factories.set(role, made);
      }
      return made;
    };
    const list = (roles: readonly KeyRole[]): ((resource: string) => string[]) => {
      const made = roles.map(factory);
      return (resource) => made.map((key) => key(resource));
    };
    this.lockKey = factory('lock');
    this.channel = keys.keyFactory(feature, 'released');
    this.acquireKeys = list(kind.keys.acquire);
    this.releaseKeys = list(kind.keys.release);
    this.extendKeys = list(kind.keys.extend);
    this.unwaitKeys = list(kind.keys.unwait);
    this.acquireScript = engine.bundled<AcquireReply>(scripts.acquire, kind.keys.acquire.length);
    this.releaseScript = engine.bundled<0 | 1>(scripts.release, kind.keys.release.length);
    this.extendScript = engine.bundled<0 | 1>(scripts.extend, 1);
    // One to four keys, by kind.
    this.unwaitScript = engine.bundled<number>('lock/unwait');
  }

  /**
   * One acquire attempt with `token`: the script's promise itself (callers await it in their own
   * `async` function: no extra promise per call). `count`: the attempt of a subscribed waiter (see
   * {@link WaiterCount}); the caller updates `count.counted` from the reply. A caller whose attempt fails
   * calls {@link handBack}. With `replicas`, see {@link replicatedAttempt}.
   */
  attempt(
    resource: string,
    token: string,
    ttlMs: number,
    count?: WaiterCount,
    permits = 1,
    replicas?: ReplicaRequirement,
  ): Promise<AcquireReply> {
    const fenceTtl = Math.max(MIN_FENCE_KEY_TTL_MS, Math.min(2 * ttlMs, 2_147_483_647));
    // A plain lock attempt (the common case) leaves out the waiter arguments; a semaphore's and a fair
    // lock's always send them, before the permits (ARGV[6]) or the ticket and entry TTL (ARGV[6-7]).
    const args: Array<string | number> = [token, ttlMs, fenceTtl];
    if (count) {
      const countTtl = Math.max(0, Math.ceil(count.deadline - performance.now())) + WAITER_COUNT_MARGIN_MS;
      args.push(count.counted ? COUNTED_WAITER : NEW_WAITER, countTtl);
    } else if (this.kind.permits || this.kind.fair) {
      args.push(PLAIN_ATTEMPT, 0);
    }
    if (this.kind.permits) args.push(permits);
    if (this.kind.fair) args.push(count ? count.ticket : '', FAIR_ENTRY_TTL_MS);
    if (replicas) return this.replicatedAttempt(resource, token, args, replicas, count);
    return this.acquireScript.run(this.acquireKeys(resource), args);
  }

  /**
   * An attempt that counts only once `replicas.count` replicas have it: the script runs on the
   * acknowledged connection, then WAIT there. Too few acknowledgements: the lease is released and
   * the attempt rejects with {@link LockReplicationError}. A WAIT without a reply rejects with
   * {@link RedisLuaUnavailableError} (outcome unknown: the caller hands the lease back).
   */
  private async replicatedAttempt(
    resource: string,
    token: string,
    args: readonly (string | number)[],
    replicas: ReplicaRequirement,
    count: WaiterCount | undefined,
  ): Promise<AcquireReply> {
    if (!this.acks) throw new Error(`nest-redis-lua: ${this.kind.feature} leases do not take "replicas"`);
    const keys = this.acquireKeys(resource);
    const reply = await this.acks.run(this.acquireScript, keys, args);
    if (reply[0] !== 1) return reply;
    // The script that took the lease uncounted the waiter, whatever comes next.
    if (count) count.counted = false;
    const acknowledged = await this.acks.acknowledged(keys[0], replicas.count, replicas.timeoutMs, this.acquireScript.where);
    if (acknowledged !== undefined && acknowledged >= replicas.count) return reply;
    try {
      await this.release(resource, token);
    } catch (err) {
      this.handBack(err, resource, token, 'too few replicas acknowledged it');
      this.log.warn(
        `Lock on "${resource}": too few replicas acknowledged it, and its release failed (it expires by its TTL): ${(err as Error).message}`,
      );
    }
    throw new LockReplicationError(resource, replicas.count, acknowledged, replicas.timeoutMs);
  }

  /** Deletes the lock if it is held with `token` and publishes a release notice if a waiter is counted (1: deleted). */
  release(resource: string, token: string): Promise<0 | 1> {
    return this.releaseScript.run(this.releaseKeys(resource), [token, this.channel(resource)]);
  }

  /** Sets the lock's TTL to `ttlMs` if it is held with `token` (1: renewed). */
  extend(resource: string, token: string, ttlMs: number): Promise<0 | 1> {
    return this.extendScript.run(this.extendKeys(resource), [token, ttlMs]);
  }

  /**
   * After an acquire or release with `token` failed: when no reply came (the connection dropped, or a
   * time-out), the script may have taken the lock for a caller that now gets an error, or not released
   * it. Hands the lock back by token (compare-and-delete: harmless if it is not held with the token),
   * instead of blocking others for ttlMs. Never throws.
   */
  handBack(err: unknown, resource: string, token: string, why: string): void {
    if (outcomeUnknown(err)) this.releaseOrphan(resource, token, why);
  }

  /**
   * Uncounts a waiter that gave up, and takes its `ticket` out of a fair queue (best effort: the
   * counter's and the entry's TTLs bound a missed one). Never rejects.
   */
  unwait(resource: string, ticket: string): void {
    const args = this.kind.fair ? [this.channel(resource), ticket] : [this.channel(resource)];
    this.unwaitScript.run(this.unwaitKeys(resource), args).catch((err: Error) => {
      this.log.debug(`Lock on "${resource}": cannot uncount a waiter, its count expires by its TTL: ${err.message}`);
    });
  }

  /**
   * Best-effort release by token of a lock this process may hold without knowing it. Written after
   * the failed call on the same connection, it runs after it; when the connection is down it waits in
   * ioredis's offline queue for the reconnection. If it fails too, the lock expires by its TTL.
   * Never rejects.
   */
  private releaseOrphan(resource: string, token: string, why: string): void {
    this.release(resource, token).then(
      (released) => {
        if (released === 1) this.log.warn(`Lock on "${resource}": released a lock this process took but could not use (${why})`);
      },
      (err: Error) => {
        this.log.warn(`Lock on "${resource}": ${why}; it may stay held until its TTL (the release failed too: ${err.message})`);
      },
    );
  }
}
