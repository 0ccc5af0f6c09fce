--[[
  Stores a loaded value, releases the loader lock and wakes the waiters. The value is written only
  while no other caller holds the lock (this caller still holds it, or it expired and nobody took it
  over), so a slow loader whose lock passed to another never overwrites that loader's value.

  KEYS[1] the cached value (string)
  KEYS[2] the loader lock
  ARGV[1] token of the loader
  ARGV[2] the serialized value
  ARGV[3] value ttl in ms
  ARGV[4] pub/sub channel of the key (waiters re-read when a message arrives)

  Returns 1 if the value was stored, 0 if another caller holds the lock.
]]
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if holder then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[4], 'stored')
return 1
