import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';

/** Injection token of the application's own ioredis client. */
export const APP_REDIS = 'APP_REDIS';

/** RedisLuaModule never closes a client it was given (`client` option): the application quits it. */
@Injectable()
export class RedisClientShutdown implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisClientShutdown.name);

  constructor(@Inject(APP_REDIS) private readonly redis: Redis) {}

  async onApplicationShutdown(signal?: string): Promise<void> {
    await this.redis.quit();
    this.logger.log(`Redis client closed (${signal ?? 'app.close()'})`);
  }
}
