#!lua flags=allow-oom
--[[
  Releases the loader lock after a failed load, if this caller still holds it, and wakes the
  waiters so that one of them becomes the next loader.

  KEYS[1] the loader lock
  ARGV[1] token of the loader
  ARGV[2] pub/sub channel of the key

  Returns 1 if the lock was released, 0 if this caller no longer held it.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], 'released')
return 1
