import { Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { validateLockOptions } from '../lock/lock.options';
import { LockService } from '../lock/lock.service';
import { KeyBuilder, validateKeyPrefix } from '../scripts/key-builder';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import type { LuaScriptDefinition } from '../scripts/script-definition.interface';
import { getScriptToken } from '../scripts/script.decorators';
import { closeClient, createConnection, validateConnectionOptions, type RedisConnection } from './redis-connection';
import { REDIS_LUA_CLIENT, REDIS_LUA_CONNECTION, REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from './redis-lua.constants';
import { ConfigurableModuleClass } from './redis-lua.module-definition';
import { DEFAULT_KEY_PREFIX, type RedisLuaModuleOptions } from './redis-lua-options.interface';
import { RedisLuaHealthIndicator } from './redis-lua.health';
import { RedisLuaSubscriber } from './redis-subscriber';
import { LeaderboardService } from '../leaderboard/leaderboard.service';
import { BoundedCounterService } from '../counter/counter.service';
import { CacheAsideService } from '../cache/cache.service';
import { RateLimiterService } from '../rate-limit/rate-limit.service';
import { validateRateLimitModuleOptions } from '../rate-limit/rate-limit.options';
import { RateLimitRouteExplorer } from '../rate-limit/rate-limit.explorer';

const connectionProvider: Provider = {
  provide: REDIS_LUA_CONNECTION,
  inject: [REDIS_LUA_OPTIONS],
  useFactory: (options: RedisLuaModuleOptions): RedisConnection => {
    validateOptions(options);
    const connection = createConnection(options);
    if (connection.owned) reportConnectionErrors(connection);
    return connection;
  },
};

/** Services every feature shares; feature services are added to this list by their folders. */
const SHARED_PROVIDERS: Provider[] = [
  connectionProvider,
  { provide: REDIS_LUA_CLIENT, inject: [REDIS_LUA_CONNECTION], useFactory: (c: RedisConnection) => c.client },
  {
    provide: REDIS_LUA_KEYS,
    inject: [REDIS_LUA_OPTIONS],
    useFactory: (options: RedisLuaModuleOptions) => new KeyBuilder(options.keyPrefix ?? DEFAULT_KEY_PREFIX),
  },
  LuaScriptEngine,
  RedisLuaSubscriber,
  RedisLuaHealthIndicator,
  LeaderboardService,
  BoundedCounterService,
  CacheAsideService,
  RateLimiterService,
  LockService,
];

/**
 * The module: one Redis connection, the Lua script engine and the feature services.
 *
 * ```ts
 * RedisLuaModule.forRoot({ url: 'redis://127.0.0.1:6379' })
 * RedisLuaModule.forRootAsync({ inject: [ConfigService], useFactory: (c) => ({ url: c.get('REDIS_URL') }) })
 * RedisLuaModule.forFeature([{ name: 'transfer', path: 'lua/transfer.lua', numberOfKeys: 2 }])
 * ```
 * Global by default (`isGlobal: false` to opt out). Closes the connections it opened when the
 * application shuts down; a `client` the application passed in is left open.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [...SHARED_PROVIDERS, RateLimitRouteExplorer],
  exports: SHARED_PROVIDERS,
})
export class RedisLuaModule extends ConfigurableModuleClass implements OnApplicationShutdown {
  constructor(@Inject(REDIS_LUA_CONNECTION) private readonly connection: RedisConnection) {
    super();
  }

  /**
   * Registers application scripts; inject each with `@InjectScript(name)`. Needs `forRoot` or
   * `forRootAsync` somewhere in the application (the module is global by default).
   */
  static forFeature(scripts: readonly LuaScriptDefinition[]): DynamicModule {
    const providers: Provider[] = scripts.map((definition) => ({
      provide: getScriptToken(definition.name),
      inject: [LuaScriptEngine],
      useFactory: (engine: LuaScriptEngine) => engine.register(definition),
    }));
    return { module: RedisLuaFeatureModule, providers, exports: providers };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.connection.owned) await closeClient(this.connection.client);
  }
}

/** Host of `forFeature` script providers. */
@Module({})
export class RedisLuaFeatureModule {}

function validateOptions(options: RedisLuaModuleOptions): void {
  validateConnectionOptions(options);
  if (options.keyPrefix !== undefined) validateKeyPrefix(options.keyPrefix);
  validateRateLimitModuleOptions(options.rateLimit);
  // Before the connection opens: a boot failure after it would leave it open.
  validateLockOptions(options.lock, 'RedisLuaModule.forRoot({ lock })');
  if (options.bootTimeoutMs !== undefined && (!Number.isFinite(options.bootTimeoutMs) || options.bootTimeoutMs <= 0)) {
    throw new Error(`nest-redis-lua: option "bootTimeoutMs" must be a positive number of ms, got ${options.bootTimeoutMs}`);
  }
  for (const flag of ['coalesceWrites', 'debug', 'lazyConnect'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
      throw new Error(`nest-redis-lua: option "${flag}" must be true or false, got ${JSON.stringify(options[flag])}`);
    }
  }
}

/** Logs a warning once per outage (first error after being ready), instead of ioredis's console noise. */
function reportConnectionErrors({ client, description }: RedisConnection): void {
  const logger = new Logger('RedisLua');
  let reported = false;
  client.on('ready', () => {
    reported = false;
  });
  client.on('error', (err: Error) => {
    if (reported) return;
    reported = true;
    logger.warn(`Redis at ${description}: ${err.message}`);
  });
}
