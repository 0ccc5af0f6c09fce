import { MODULE_OPTIONS_TOKEN } from './redis-lua.module-definition';

/** Injection token of the resolved {@link RedisLuaModuleOptions}. */
export const REDIS_LUA_OPTIONS = MODULE_OPTIONS_TOKEN;

/** Injection token of the module's ioredis client (`Redis` or `Cluster`); see {@link InjectRedis}. */
export const REDIS_LUA_CLIENT = Symbol('nest-redis-lua:client');

/** Injection token of the {@link RedisConnection} (the client and whether the module owns it). */
export const REDIS_LUA_CONNECTION = Symbol('nest-redis-lua:connection');

/** Injection token of the {@link KeyBuilder} bound to the module's `keyPrefix`. */
export const REDIS_LUA_KEYS = Symbol('nest-redis-lua:keys');
