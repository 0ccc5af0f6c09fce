#!lua flags=allow-oom
--[[
  Renews a lock's TTL only if it is still held with the caller's token.

  KEYS[1] lock key
  ARGV[1] token of the holder
  ARGV[2] new TTL in ms, counted from now (integer > 0)
  Returns 1 when renewed, 0 when the lock is not held with this token (expired, released, taken)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
