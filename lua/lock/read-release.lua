#!lua flags=allow-oom
--[[
  Gives back a read lock held with the caller's token; when it was the last live reader, wakes the
  waiters if any may exist (a writer waits for the readers to be gone; the notice is published only
  while the waiter counter of acquire.lua is above 0).

  KEYS[1] readers (sorted set token -> expiry ms)
  KEYS[2] waiter counter key (same hash tag)
  KEYS[3] fair queue (see fair-acquire.lua; same hash tag): the notice is its head's ticket, if any
  ARGV[1] token of the reader
  ARGV[2] pub/sub channel of the resource's release notices
  Returns 1 when the read lock was given back, 0 when it is not held with this token (expired,
          released)
]]
--- @include "../includes/lock-unwait"
--- @include "../includes/lock-lease"
local now_ms = lock_now_ms(redis.call('TIME'))
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not expiry then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
if expiry <= now_ms then
  return 0
end
if lock_live_holders(KEYS[1], now_ms) == 0 and (tonumber(redis.call('GET', KEYS[2]) or '0') or 0) > 0 then
  redis.call('PUBLISH', ARGV[2], lock_notice(KEYS[3]))
end
return 1
