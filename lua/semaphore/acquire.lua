#!lua
--[[
  Takes one of a semaphore's permits if fewer than ARGV[6] holders hold one, and hands out the
  name's next fencing token (the rule of lock/acquire.lua); keeps the count of subscribed waiters
  like lock/acquire.lua does, so that a release publishes a notice only when someone may wait.

  Holders are a sorted set: member = the holder's token, score = when its permit expires (Redis
  TIME in ms). Expired holders are dropped first, so the permit of a holder that died (kill -9, a
  lost network) comes back within its TTL. The set lives as long as its latest holder.

  KEYS[1] holders (sorted set token -> expiry ms)
  KEYS[2] fence key (the last fence handed out; same hash tag)
  KEYS[3] waiter counter key (same hash tag)
  ARGV[1] token (random, chosen by the client)
  ARGV[2] permit TTL in ms (integer > 0)
  ARGV[3] fence key TTL in ms (integer > 0)
  ARGV[4] '0': a plain attempt; '1' a subscribed waiter not counted yet; '2' a counted waiter
  ARGV[5] waiter counter TTL in ms (read when ARGV[4] is '1' or '2')
  ARGV[6] permits: how many holders the semaphore admits at once (integer >= 1)
  Returns {1, fence as a decimal string} when a permit was taken,
          {0, ms until the first holder's permit expires} when all are held
]]
--- @include "../includes/lock-unwait"
--- @include "../includes/lock-lease"
local now = redis.call('TIME')
local now_ms = lock_now_ms(now)
local mode = ARGV[4]
if lock_live_holders(KEYS[1], now_ms) >= tonumber(ARGV[6]) then
  lock_count_waiter(KEYS[3], mode, ARGV[5])
  return {0, lock_first_expiry(KEYS[1], now_ms)}
end
if mode == '2' then
  lock_unwait(KEYS[3])
end
lock_hold(KEYS[1], ARGV[1], now_ms, ARGV[2])
return {1, lock_next_fence(KEYS[2], now, ARGV[3])}
