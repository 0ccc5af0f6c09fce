#!lua flags=allow-oom
--[[
  Gives back a semaphore permit held with the caller's token, then wakes the waiters if any may
  exist (the notice is published only while the waiter counter of acquire.lua is above 0).

  KEYS[1] holders (sorted set token -> expiry ms)
  KEYS[2] waiter counter key (same hash tag)
  ARGV[1] token of the holder
  ARGV[2] pub/sub channel of the semaphore's release notices
  Returns 1 when the permit was given back, 0 when it is not held with this token (expired,
          released, or reclaimed after it expired)
]]
--- @include "../includes/lock-lease"
local now_ms = lock_now_ms(redis.call('TIME'))
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not expiry then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
if expiry <= now_ms then
  -- It had expired: someone may hold its place already (it counted as free).
  return 0
end
if (tonumber(redis.call('GET', KEYS[2]) or '0') or 0) > 0 then
  redis.call('PUBLISH', ARGV[2], 'released')
end
return 1
