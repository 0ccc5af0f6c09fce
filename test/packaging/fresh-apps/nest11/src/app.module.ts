import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Redis } from 'ioredis';
import { RedisLuaExceptionFilter, RedisLuaModule } from 'nest-redis-lua';
import { join } from 'node:path';
import { BumpController } from './bump.controller';
import { requiredEnv } from './env';
import { JobsController } from './jobs.controller';
import { LimitedController } from './limited.controller';
import { LoginController } from './login.controller';
import { PerUserController } from './per-user.controller';
import { APP_REDIS, RedisClientShutdown } from './redis-client';
import { ScoresController } from './scores.controller';
import { SearchController } from './search.controller';

/** The application's own client, shared with nest-redis-lua through the `client` option. */
const redis = new Redis(requiredEnv('REDIS_URL'));

@Module({
  imports: [
    // Exact limits: a slow Redis is waited for up to 5 s, and one that does not answer refuses (503)
    // instead of admitting requests undecided (the default fails open after 250 ms).
    RedisLuaModule.forRoot({
      client: redis,
      keyPrefix: process.env.REDIS_KEY_PREFIX ?? 'fresh-app',
      rateLimit: { failMode: 'closed', timeoutMs: 5_000 },
    }),
    // nest-cli.json's "assets" copies src/lua/*.lua next to the compiled code in dist/.
    RedisLuaModule.forFeature([{ name: 'bump', path: join(__dirname, 'lua', 'bump.lua'), numberOfKeys: 1 }]),
  ],
  controllers: [LimitedController, PerUserController, JobsController, ScoresController, BumpController, SearchController, LoginController],
  // The library's errors from the handlers' own calls: bad input 400, Redis unavailable 503.
  providers: [{ provide: APP_REDIS, useValue: redis }, RedisClientShutdown, { provide: APP_FILTER, useClass: RedisLuaExceptionFilter }],
})
export class AppModule {}
