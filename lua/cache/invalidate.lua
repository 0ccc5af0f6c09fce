#!lua flags=allow-oom
--[[
  Invalidates a cached value: deletes it and cancels a load in progress (its loader lock), so that a
  loader that read the old data before the invalidation cannot store it afterwards; wakes the waiters,
  one of which loads again.

  KEYS[1] the cached value (string)
  KEYS[2] the loader lock
  ARGV[1] pub/sub channel of the key

  Returns 1 if a value or a load in progress was removed, 0 if there was neither.
]]
local removed = redis.call('DEL', KEYS[1], KEYS[2])
if removed > 0 then redis.call('PUBLISH', ARGV[1], 'invalidated') end
if removed > 0 then return 1 end
return 0
