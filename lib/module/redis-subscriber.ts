import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { closeClient, isCluster, type RedisConnection } from './redis-connection';
import { REDIS_LUA_CONNECTION } from './redis-lua.constants';
import { redisFailure } from '../scripts/lua-script.errors';

/** Called with each message published on a channel. */
export type MessageListener = (message: string) => void;

/**
 * One shared pub/sub connection per application (a duplicate of the module's client, opened on first
 * use). Features use it to be woken by a PUBLISH from a script (a released lock, a loaded cache value)
 * instead of polling. Channels are reference-counted: SUBSCRIBE on the first listener, UNSUBSCRIBE
 * after the last. ioredis re-subscribes by itself after a reconnect.
 */
@Injectable()
export class RedisLuaSubscriber implements OnApplicationShutdown {
  private readonly logger = new Logger('RedisLua');
  private connection?: Redis | Cluster;
  private readonly listeners = new Map<string, Set<MessageListener>>();
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(@Inject(REDIS_LUA_CONNECTION) private readonly main: RedisConnection) {}

  /**
   * Listens to `channel`. Resolves once the server has confirmed the subscription, so a message
   * published after that is delivered. Returns the function that removes the listener.
   * @throws RedisLuaUnavailableError when the subscription cannot be made (Redis unreachable, no
   *   reply within `commandTimeout`).
   * @example
   * const stop = await subscriber.subscribe('jobs:done', (message) => console.log(message));
   * // ...
   * stop();
   */
  async subscribe(channel: string, listener: MessageListener): Promise<() => void> {
    const sub = this.open();
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      const subscribing = sub.subscribe(channel).finally(() => this.pending.delete(channel));
      this.pending.set(channel, subscribing);
    }
    set.add(listener);
    const remove = (): void => this.remove(channel, listener);
    try {
      await this.pending.get(channel);
    } catch (err) {
      remove();
      throw redisFailure(err, 'RedisLuaSubscriber.subscribe');
    }
    return remove;
  }

  async onApplicationShutdown(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.listeners.clear();
    if (connection) await closeClient(connection);
  }

  private remove(channel: string, listener: MessageListener): void {
    const set = this.listeners.get(channel);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(channel);
    // Best effort: a failed UNSUBSCRIBE leaves a channel with no listener, which costs nothing.
    this.connection?.unsubscribe(channel).catch(() => undefined);
  }

  private open(): Redis | Cluster {
    if (this.connection) return this.connection;
    const { client } = this.main;
    // The module's own clusters run without an offline queue; the subscriber keeps one, so that its
    // first SUBSCRIBE waits for the new connection to be ready instead of failing.
    const connection: Redis | Cluster = isCluster(client) ? client.duplicate(undefined, { enableOfflineQueue: true }) : client.duplicate();
    connection.on('message', (channel: string, message: string) => {
      this.listeners.get(channel)?.forEach((listener) => {
        // A throwing listener must not escape into the socket's data handler (an uncaught exception).
        try {
          listener(message);
        } catch (err) {
          this.logger.error(`a listener of channel "${channel}" threw: ${(err as Error).message}`);
        }
      });
    });
    connection.on('error', (err: Error) => this.logger.debug(`subscriber connection: ${err.message}`));
    this.connection = connection;
    return connection;
  }
}
