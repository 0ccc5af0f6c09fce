// Module
export { RedisLuaModule, RedisLuaFeatureModule } from './module/redis-lua.module';
export { ASYNC_OPTIONS_TYPE, OPTIONS_TYPE } from './module/redis-lua.module-definition';
export type { RedisLuaClusterConnection, RedisLuaModuleOptions } from './module/redis-lua-options.interface';
export { REDIS_LUA_CLIENT, REDIS_LUA_CONNECTION, REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from './module/redis-lua.constants';
export { InjectRedis } from './module/redis-lua.decorators';
export type { RedisConnection } from './module/redis-connection';
export { RedisLuaSubscriber, type MessageListener } from './module/redis-subscriber';

// Script engine
export { LuaScript, type ScriptArg } from './scripts/lua-script';
export { LuaScriptEngine } from './scripts/lua-script.engine';
export { LuaScriptError } from './scripts/lua-script.errors';
export type { LuaScriptDefinition } from './scripts/script-definition.interface';
export { InjectScript, getScriptToken } from './scripts/script.decorators';
export { KeyBuilder, encodeKeyPart, type KeyPart } from './scripts/key-builder';
export type { SourceLine } from './scripts/script-source';

// Locks
export { LockService } from './lock/lock.service';
export { Lock } from './lock/lock';
export { LockInterceptor } from './lock/lock.interceptor';
export { WithLock, CurrentLock } from './lock/lock.decorator';
export { LockLostError, LockTimeoutError } from './lock/lock.errors';
export {
  DEFAULT_LOCK_TTL_MS,
  DEFAULT_LOCK_WAIT_MS,
  type AcquireLockOptions,
  type LockModuleOptions,
  type LockResource,
  type TryAcquireLockOptions,
  type WithLockOptions,
} from './lock/lock.options';
