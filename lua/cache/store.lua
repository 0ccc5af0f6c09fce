#!lua
--[[
  Stores a loaded value, releases the loader lock and wakes the waiters. The value is written only
  while this caller still holds the lock: a loader whose lock expired (and may have passed to
  another loader), or was cancelled by an invalidation, never writes what it loaded.

  KEYS[1] the cached value (string)
  KEYS[2] the loader lock
  ARGV[1] token of the loader
  ARGV[2] the serialized value
  ARGV[3] value ttl in ms
  ARGV[4] pub/sub channel of the key (waiters re-read when a message arrives)

  Returns 1 if the value was stored, 0 if this caller no longer held the lock.
]]
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[4], 'stored')
return 1
