// The public API, grouped as the README is: the module and what every feature shares, then each feature.

// Module: connection, options, injection tokens, errors shared by every feature, health, pub/sub.
export { RedisLuaModule, RedisLuaFeatureModule } from './module/redis-lua.module';
export type { RedisLuaClusterConnection, RedisLuaModuleOptions } from './module/redis-lua-options.interface';
export type { FeatureOptions } from './module/features';
export { REDIS_LUA_CLIENT, REDIS_LUA_CONNECTION, REDIS_LUA_KEYS, REDIS_LUA_OPTIONS } from './module/redis-lua.constants';
export { InjectRedis } from './module/redis-lua.decorators';
export type { RedisConnection } from './module/redis-connection';
export { RedisLuaSubscriber, type MessageListener } from './module/redis-subscriber';
export { RedisLuaHealthIndicator, type RedisLuaHealthDetails, type RedisLuaHealthResult } from './module/redis-lua.health';
export { RedisLuaInputError, RedisLuaUnavailableError, type RedisLuaUnavailableReason } from './core/errors';
export { RedisLuaExceptionFilter } from './core/exception-filter';
export { RedisLuaHttpException, RedisLuaUnavailableException, type HeaderTarget } from './core/http';
export { RedisLuaGraphQLError } from './core/transports';
export type {
  CacheRequestEvent,
  ConnectionUnavailableEvent,
  CounterRejectionEvent,
  LeaderboardSubmissionEvent,
  LeaseKind,
  LockAcquireEvent,
  LockHeldEvent,
  LockLostEvent,
  RateLimitDecisionEvent,
  RedisLuaEvent,
  RedisLuaEventListener,
  ScriptCallEvent,
  ScriptReloadEvent,
} from './core/events';

// Your own scripts: the engine, forFeature definitions, keys.
export { LuaScript, type ScriptArg, type ScriptHost } from './scripts/lua-script';
export { LuaScriptEngine } from './scripts/lua-script.engine';
export { LuaScriptError } from './scripts/lua-script.errors';
export type { LuaScriptDefinition } from './scripts/script-definition.interface';
export { InjectScript, getScriptToken } from './scripts/script.decorators';
export { KeyBuilder, encodeKeyPart, type KeyPart } from './scripts/key-builder';
export type { SourceLine } from './scripts/script-source';

// Rate limiting.
export { RateLimiterService } from './rate-limit/rate-limit.service';
export { RateLimit, SkipRateLimit } from './rate-limit/rate-limit.decorator';
export { RateLimitGuard, type RateLimitRequest, type RateLimitResponse } from './rate-limit/rate-limit.guard';
export { RateLimitMiddleware } from './rate-limit/early-deny';
export type { RateLimitReservation } from './rate-limit/reservation';
export type { RateLimitBanStatus } from './rate-limit/bans';
export { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA, type RateLimitMetadata } from './rate-limit/rate-limit.metadata';
export {
  RateLimitExceededException,
  RateLimitInputError,
  RateLimitUnavailableError,
  type RateLimitExceededBody,
} from './rate-limit/rate-limit.errors';
export {
  RATE_LIMIT_ALGORITHMS,
  type ConsumeOptions,
  type ContextValue,
  type RateLimitAlgorithm,
  type RateLimitFailMode,
  type RateLimitHeaderOptions,
  type RateLimitModuleOptions,
  type RateLimitResult,
  type RateLimitRouteOptions,
  type RateLimitRouteRule,
  type RateLimitRule,
  type RateLimitUnavailableEvent,
  type ResolvedRateLimitRule,
} from './rate-limit/rate-limit.options';
export { clientIdentity } from './rate-limit/client-ip';

// Locks.
export { LockService } from './lock/lock.service';
export { SemaphoreService } from './lock/semaphore.service';
export {
  MAX_SEMAPHORE_PERMITS,
  type AcquireSemaphoreOptions,
  type TryAcquireSemaphoreOptions,
  type WithSemaphoreOptions,
} from './lock/semaphore.options';
export { Lock } from './lock/lock';
export { MultiLock } from './lock/multi-lock';
export { WithLock, WithSemaphore, CurrentLock, CurrentLocks, CurrentPermit } from './lock/lock.decorator';
export { LockInterceptor, SemaphoreInterceptor, type RouteLease } from './lock/lock.interceptor';
export type { CompiledLockResource, WithLockMetadata } from './lock/lock-resource';
export {
  LockConflictException,
  LockInputError,
  LockLostError,
  LockLostException,
  LockReplicationError,
  LockTimeoutError,
  SemaphoreConflictException,
  SemaphoreTimeoutError,
} from './lock/lock.errors';
export {
  DEFAULT_LOCK_TTL_MS,
  DEFAULT_LOCK_WAIT_MS,
  DEFAULT_REPLICA_TIMEOUT_MS,
  MAX_LOCK_RESOURCES,
  type AcquireLockOptions,
  type LeaseOptions,
  type LockMode,
  type LockModuleOptions,
  type LockTokenOptions,
  type LockResource,
  type ReplicaAckOptions,
  type TryAcquireLockOptions,
  type WithLockOptions,
} from './lock/lock.options';

// Leaderboards.
export { LeaderboardService } from './leaderboard/leaderboard.service';
export { LeaderboardInputError } from './leaderboard/leaderboard.errors';
export {
  MAX_BOARD_BYTES,
  MAX_HISTORY_LENGTH,
  MAX_MEMBER_BYTES,
  MAX_READ_ENTRIES,
  type LeaderboardConfig,
  type LeaderboardEntry,
  type LeaderboardHistoryEntry,
  type LeaderboardOrder,
  type LeaderboardReadOptions,
  type SubmitMode,
  type SubmitOptions,
  type SubmitResult,
} from './leaderboard/leaderboard.options';

// Bounded counters.
export { BoundedCounterService } from './counter/counter.service';
export { CounterInputError } from './counter/counter.errors';
export type { CounterChangeOptions, CounterChangeResult, CounterSetOptions } from './counter/counter.options';

// Cache-aside.
export { CacheAsideService } from './cache/cache.service';
export { CacheAsideError, CacheInputError, CacheWaitTimeoutError } from './cache/cache.errors';
export { JSON_SERIALIZER, type CacheSerializer, type GetOrLoadOptions } from './cache/cache.options';

// Idempotency keys.
export { IdempotencyService } from './idempotency/idempotency.service';
export { CurrentIdempotency, Idempotent } from './idempotency/idempotent.decorator';
export { IdempotencyInterceptor } from './idempotency/idempotency.interceptor';
export {
  IdempotencyConflictError,
  IdempotencyConflictException,
  IdempotencyInputError,
  IdempotencyKeyException,
  IdempotencyMismatchError,
  IdempotencyMismatchException,
} from './idempotency/idempotency.errors';
export {
  DEFAULT_IDEMPOTENCY_LEASE_MS,
  DEFAULT_IDEMPOTENCY_TTL_MS,
  type IdempotencyRunOptions,
  type IdempotentAnswer,
  type IdempotentExchange,
  type IdempotentOptions,
  type IdempotentResult,
} from './idempotency/idempotency.options';
