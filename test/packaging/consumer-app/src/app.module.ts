import { Module } from '@nestjs/common';
import { RedisLuaModule } from 'nest-redis-lua';
import { JobsController } from './jobs.controller';
import { LimitedController } from './limited.controller';

/** A fresh app using nest-redis-lua as installed from its tarball. */
@Module({
  imports: [
    RedisLuaModule.forRoot({
      url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      keyPrefix: process.env.REDIS_KEY_PREFIX ?? 'consumer',
    }),
  ],
  controllers: [LimitedController, JobsController],
})
export class AppModule {}
