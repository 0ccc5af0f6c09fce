import { Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { mustBe } from '../core/messages';
import { tracingUnavailable } from '../core/telemetry';
import { checkBoolean, checkChoice, checkFinite, checkFunction, checkKnownKeys, fail, inputSite, keysOf } from '../core/validation';
import { KeyBuilder, validateKeyPrefix } from '../scripts/key-builder';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import type { LuaScriptDefinition } from '../scripts/script-definition.interface';
import { getScriptToken } from '../scripts/script.decorators';
import { FEATURES, type FeatureOptions } from './features';
import { closeClient, createConnection, validateConnectionOptions, type RedisConnection } from './redis-connection';
import { REDIS_LUA_CLIENT, REDIS_LUA_CONNECTION, REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from './redis-lua.constants';
import { ConfigurableModuleClass } from './redis-lua.module-definition';
import { DEFAULT_KEY_PREFIX, type RedisLuaModuleOptions } from './redis-lua-options.interface';
import { RedisLuaHealthIndicator } from './redis-lua.health';
import { RedisLuaSubscriber } from './redis-subscriber';
import { RouteChecks } from './route-checks';

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

/** What every feature builds on: the connection, the key builder, the script engine, pub/sub, health. */
const CORE_PROVIDERS: Provider[] = [
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
];

/** The core and every feature's providers: registered by the module and exported to the application. */
const EXPORTED_PROVIDERS: Provider[] = [...CORE_PROVIDERS, ...FEATURES.flatMap((feature) => feature.providers)];

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
  providers: [...EXPORTED_PROVIDERS, RouteChecks],
  exports: EXPORTED_PROVIDERS,
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

const MODULE_SITE = inputSite('');

/** The module's own option keys and the features' sections. */
const MODULE_KEYS = [
  ...keysOf<Omit<RedisLuaModuleOptions, keyof FeatureOptions>>({
    url: true,
    redis: true,
    cluster: true,
    client: true,
    keyPrefix: true,
    debug: true,
    lazyConnect: true,
    bootTimeoutMs: true,
    coalesceWrites: true,
    report: true,
    scripts: true,
    readFrom: true,
    onEvent: true,
    metrics: true,
    tracing: true,
  }),
  ...FEATURES.flatMap((feature) => (feature.options ? [feature.options.key] : [])),
];

const SCRIPT_MODES = ['eval', 'functions'] as const;
const READ_FROM = ['master', 'replica'] as const;

/** Every option, before the connection opens (a boot failure after it would leave it open). */
function validateOptions(options: RedisLuaModuleOptions): void {
  if (typeof options !== 'object' || options === null) fail(MODULE_SITE, 'options', mustBe('options', 'an object', options));
  checkKnownKeys(options, MODULE_KEYS, MODULE_SITE);
  validateConnectionOptions(options);
  if (options.keyPrefix !== undefined) validateKeyPrefix(options.keyPrefix);
  if (options.bootTimeoutMs !== undefined && !(checkFinite(options.bootTimeoutMs, 'bootTimeoutMs', MODULE_SITE, 'option') > 0)) {
    fail(MODULE_SITE, 'bootTimeoutMs', mustBe('bootTimeoutMs', 'a positive number of ms', options.bootTimeoutMs));
  }
  for (const flag of ['coalesceWrites', 'debug', 'lazyConnect', 'report', 'metrics', 'tracing'] as const) {
    if (options[flag] !== undefined) checkBoolean(options[flag], flag, MODULE_SITE);
  }
  if (options.scripts !== undefined) checkChoice(options.scripts, 'scripts', MODULE_SITE, SCRIPT_MODES);
  if (options.readFrom !== undefined) checkChoice(options.readFrom, 'readFrom', MODULE_SITE, READ_FROM);
  if (options.onEvent !== undefined) checkFunction(options.onEvent, 'onEvent', MODULE_SITE, 'a function (event) => void');
  const tracing = tracingUnavailable(options);
  if (tracing) fail(MODULE_SITE, 'tracing', tracing);
  for (const { options: section } of FEATURES) {
    if (section) section.validate((options as Record<string, unknown>)[section.key]);
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
