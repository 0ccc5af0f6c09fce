import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { RedisLuaModule, type RedisLuaModuleOptions } from 'nest-redis-lua';
import { PagesModule } from './pages/pages.module';

/**
 * Redis connection from the environment:
 * - `REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001` for a cluster, or
 * - `REDIS_URL=redis://127.0.0.1:6379` (the default).
 */
export function redisOptionsFromConfig(config: ConfigService): RedisLuaModuleOptions {
  const nodes = config.get<string>('REDIS_CLUSTER_NODES');
  if (nodes) {
    return {
      cluster: {
        nodes: nodes.split(',').map((node) => {
          const [host, port] = node.trim().split(':');
          return { host, port: Number(port) };
        }),
      },
      keyPrefix: 'sample',
    };
  }
  return { url: config.get<string>('REDIS_URL') ?? 'redis://127.0.0.1:6379', keyPrefix: 'sample' };
}

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true }),
    RedisLuaModule.forRootAsync({ inject: [ConfigService], useFactory: redisOptionsFromConfig }),
    PagesModule,
  ],
})
export class AppModule {}
