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
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local mode = ARGV[4]
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[6]) then
  lock_count_waiter(KEYS[3], mode, ARGV[5])
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now_ms}
end
if mode == '2' then
  lock_unwait(KEYS[3])
end
local expiry = now_ms + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if last >= fence then
  fence = last + 1
end
-- '%.0f': tostring() would print 16-digit numbers in exponent form and lose digits.
local text = string.format('%.0f', fence)
redis.call('SET', KEYS[2], text, 'PX', ARGV[3])
return {1, text}
