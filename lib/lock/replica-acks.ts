import type { Logger } from '@nestjs/common';
import { Command, type Cluster, type Redis } from 'ioredis';
import { RedisLuaUnavailableError } from '../core/errors';
import { closeClient, isCluster } from '../module/redis-connection';
import type { LuaScript, ScriptArg } from '../scripts/lua-script';
import { redisFailure, unavailableMessage } from '../scripts/lua-script.errors';

/** How long a command waits for its reply when the client sets no `commandTimeout`. */
const DEFAULT_REPLY_MS = 5_000;

/** The next WAIT of one server connection, shared by every confirmation that asked while one was in flight. */
interface NextWait {
  replicas: number;
  timeoutMs: number;
  readonly acks: Promise<number>;
  resolve(acks: number): void;
  reject(err: unknown): void;
}

/** One server connection's WAITs: at most one in flight, and the one that follows it. */
interface Lane {
  busy: boolean;
  next?: NextWait;
}

/**
 * Acquisitions that must reach replicas before they count (`replicas` of a lock): the acquiring
 * script runs on a connection of its own, then `WAIT numreplicas timeout` on that same server
 * connection, which blocks the connection until that many replicas have acknowledged every write
 * made on it so far. WAIT blocks the connection it runs on: on the module's connection it would stall
 * every other call of the application for up to `replicaTimeoutMs` when replicas are missing.
 *
 * Opened on first use (a duplicate of the module's client; on a cluster, a second Cluster client, where
 * the WAIT goes to the master that ran the script: the slot's owner in that client's slot map). On one
 * server connection at most one WAIT is in flight; confirmations asked for while it is are answered
 * by the next WAIT, sent when it returns (one WAIT covers every earlier write of the connection), so
 * that N concurrent confirmations during a shortage take two WAITs, not N in a row. Not exported
 * from the package.
 */
export class ReplicaAcks {
  private client?: Redis | Cluster;
  /** While the connection is not ready: whether it became ready in time. */
  private connecting?: Promise<boolean>;
  private readonly scripts = new Map<LuaScript<unknown>, LuaScript<unknown>>();
  private lanes = new WeakMap<Redis, Lane>();
  private readonly replyMs: number;

  constructor(
    private readonly main: Redis | Cluster,
    private readonly log: Logger,
  ) {
    const options = isCluster(main) ? main.options.redisOptions : main.options;
    this.replyMs = typeof options?.commandTimeout === 'number' ? options.commandTimeout : DEFAULT_REPLY_MS;
  }

  /** Runs `script` on the acknowledged connection (waiting up to `commandTimeout` for it to be ready). */
  async run<T>(script: LuaScript<T>, keys: readonly string[], args: readonly ScriptArg[]): Promise<T> {
    const client = await this.ready(script.name);
    let own = this.scripts.get(script) as LuaScript<T> | undefined;
    if (!own) {
      own = script.onClient(client);
      this.scripts.set(script, own);
    }
    return own.run(keys, args);
  }

  /**
   * How many replicas acknowledged the writes made so far on the connection that wrote `key` (after
   * {@link run} on that key), asking the master serving its slot to wait up to `timeoutMs` for
   * `replicas` of them; `undefined` when that did not happen within `timeoutMs` by this process's
   * clock. (Redis checks WAIT's timeout about `1000 / hz` ms late, 100 ms with the default hz 10;
   * WAIT returns as soon as `replicas` acknowledged, so a reply still missing at `timeoutMs` means
   * fewer did.)
   * @throws RedisLuaUnavailableError when the WAIT fails (connection lost, the server refuses it).
   */
  acknowledged(key: string, replicas: number, timeoutMs: number, where: string): Promise<number | undefined> {
    let acks: Promise<number>;
    try {
      acks = this.waitOn(this.serverOf(key, where), replicas, timeoutMs, where);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      acks.then(
        (count) => {
          clearTimeout(timer);
          resolve(count);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** The next WAIT's reply on `node`: sent now if none is in flight, else shared with others after it. */
  private waitOn(node: Redis, replicas: number, timeoutMs: number, where: string): Promise<number> {
    let lane = this.lanes.get(node);
    if (!lane) {
      lane = { busy: false };
      this.lanes.set(node, lane);
    }
    if (!lane.busy) return this.send(node, lane, replicas, timeoutMs, where);
    // A WAIT is in flight: it may have been written before this caller's script, so take the next.
    let next = lane.next;
    if (!next) {
      let resolve!: (acks: number) => void;
      let reject!: (err: unknown) => void;
      const acks = new Promise<number>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      next = { replicas, timeoutMs, acks, resolve, reject };
      lane.next = next;
    } else {
      next.replicas = Math.max(next.replicas, replicas);
      next.timeoutMs = Math.max(next.timeoutMs, timeoutMs);
    }
    return next.acks;
  }

  /** Closes the connection (on shutdown). */
  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.scripts.clear();
    this.lanes = new WeakMap();
    if (client) await closeClient(client);
  }

  private async send(node: Redis, lane: Lane, replicas: number, timeoutMs: number, where: string): Promise<number> {
    lane.busy = true;
    try {
      const command = new Command('wait', [replicas, timeoutMs]);
      // The client's commandTimeout would cut a WAIT that may rightly take timeoutMs: the reply is
      // due timeoutMs later than any other (a timer set here is kept by ioredis).
      command.setTimeout(timeoutMs + this.replyMs);
      void node.sendCommand(command);
      return Number(await command.promise);
    } catch (err) {
      throw redisFailure(err, where);
    } finally {
      lane.busy = false;
      const next = lane.next;
      lane.next = undefined;
      if (next) this.send(node, lane, next.replicas, next.timeoutMs, where).then(next.resolve, next.reject);
    }
  }

  /** The server connection that ran the last call on `key`: the client, or its cluster's master of the key's slot. */
  private serverOf(key: string, where: string): Redis {
    const client = this.client;
    if (client && !isCluster(client)) return client;
    if (client) {
      const slot = new Command('exists', [key], { keyPrefix: client.options.keyPrefix }).getSlot();
      const owner = client.slots[slot]?.[0];
      const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
      if (node) return node;
    }
    throw new RedisLuaUnavailableError(unavailableMessage(where, 'the master that took the lock is no longer known'), 'unreachable');
  }

  /** The connection, opened on first use, once it is ready (at most `commandTimeout` of waiting). */
  private async ready(where: string): Promise<Redis | Cluster> {
    let client = this.client;
    if (!client) {
      client = this.open();
      this.client = client;
    }
    if (client.status === 'ready') return client;
    this.connecting ??= this.whenReady(client).finally(() => (this.connecting = undefined));
    if (!(await this.connecting)) {
      throw new RedisLuaUnavailableError(unavailableMessage(where, `no connection within ${this.replyMs} ms`), 'unreachable');
    }
    return client;
  }

  /** True once `client` is ready, false after `commandTimeout` without it. Never rejects. */
  private whenReady(client: Redis | Cluster): Promise<boolean> {
    if (client.status === 'wait') client.connect().catch(() => undefined); // lazyConnect: errors come as events
    return new Promise((resolve) => {
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        client.off('ready', onReady);
        resolve(ready);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), this.replyMs);
      client.once('ready', onReady);
    });
  }

  private open(): Redis | Cluster {
    const { main } = this;
    // A Cluster sends a command to a node connection that is still connecting only with its offline
    // queue on; calls are sent only once the Cluster is ready (see ready()), and each node connection
    // bounds its own queue with commandTimeout.
    const client: Redis | Cluster = isCluster(main) ? main.duplicate(undefined, { enableOfflineQueue: true }) : main.duplicate();
    client.on('error', (err: Error) => this.log.debug(`replica-acknowledged lock connection: ${err.message}`));
    // As on the module's cluster connection: find a promoted replica as soon as a node fails.
    if (isCluster(client)) client.on('node error', () => client.refreshSlotsCache());
    return client;
  }
}
