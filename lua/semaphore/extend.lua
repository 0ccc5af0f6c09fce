#!lua flags=allow-oom
--[[
  Renews a semaphore permit (or a read lock: lock/read-acquire.lua keeps its readers the same way)
  only if it is held with the caller's token and has not expired (an expired permit counts as free:
  another holder may have taken its place).

  KEYS[1] holders (sorted set token -> expiry ms)
  ARGV[1] token of the holder
  ARGV[2] new TTL in ms, counted from now (integer > 0)
  Returns 1 when renewed, 0 when the permit is not held with this token (expired, released)
]]
--- @include "../includes/lock-lease"
local now_ms = lock_now_ms(redis.call('TIME'))
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not expiry or expiry <= now_ms then
  return 0
end
lock_hold(KEYS[1], ARGV[1], now_ms, ARGV[2], 'XX')
return 1
