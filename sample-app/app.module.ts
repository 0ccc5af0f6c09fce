// First: the OpenTelemetry meter provider must be registered before RedisLuaModule starts.
import './metrics/otel';
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { APP_FILTER } from '@nestjs/core';
import { RedisLuaExceptionFilter, RedisLuaModule } from 'nest-redis-lua';
import { AuthModule } from './auth/auth.module';
import { redisOptionsFromConfig } from './config/redis-options';
import { GamesModule } from './games/games.module';
import { HealthModule } from './health/health.module';
import { HelloModule } from './hello/hello.module';
import { InventoryModule } from './inventory/inventory.module';
import { MetricsModule } from './metrics/metrics.module';
import { PagesModule } from './pages/pages.module';
import { ProductsModule } from './products/products.module';

export { redisOptionsFromConfig };

/**
 * The sample app: one module per area, all on the one global RedisLuaModule. RedisLuaExceptionFilter
 * answers the library's errors from the handlers' own service calls: bad input 400, Redis
 * unavailable 503 (the guards and interceptors already do so for their own).
 */
@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true }),
    RedisLuaModule.forRootAsync({ inject: [ConfigService], useFactory: redisOptionsFromConfig }),
    HelloModule,
    AuthModule,
    InventoryModule,
    GamesModule,
    ProductsModule,
    PagesModule,
    HealthModule,
    MetricsModule,
  ],
  providers: [{ provide: APP_FILTER, useClass: RedisLuaExceptionFilter }],
})
export class AppModule {}
