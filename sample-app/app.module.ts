import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { RedisLuaModule } from 'nest-redis-lua';
import { AuthModule } from './auth/auth.module';
import { redisOptionsFromConfig } from './config/redis-options';
import { GamesModule } from './games/games.module';
import { HealthModule } from './health/health.module';
import { HelloModule } from './hello/hello.module';
import { InventoryModule } from './inventory/inventory.module';
import { PagesModule } from './pages/pages.module';
import { ProductsModule } from './products/products.module';

export { redisOptionsFromConfig };

/** The sample app: one module per area, all on the one global RedisLuaModule. */
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
  ],
})
export class AppModule {}
