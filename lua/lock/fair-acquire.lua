#!lua
--[[
  Takes a lock (exclusive, like acquire.lua) in arrival order: a queue of waiting tickets decides
  whose turn it is. The lock is taken only when no one holds it, no live reader is in, and the queue
  is empty or its head is the caller's ticket; otherwise the caller's ticket (if it waits) joins the
  queue's tail, or keeps its place. Fencing and the waiter counts are acquire.lua's (see there):
  a fair waiter is counted as a waiter and as a waiting writer (which keeps new readers out).

  Queue: KEYS[6] is a sorted set ticket -> arrival (Redis TIME in µs, strictly increasing), KEYS[7]
  a sorted set ticket -> when the entry expires (TIME in ms). Every attempt of a waiter renews its
  entry for ARGV[7] ms; a waiter that died stops renewing, and its entry is dropped once it has
  expired (here, before the queue is read), so it blocks the queue for at most ARGV[7] ms. A waiter
  that gives up removes its entry (unwait.lua). A plain attempt (no ticket) joins no queue and is
  refused while anyone queues: no barging.

  KEYS[1] lock key (its value is the holder's token)
  KEYS[2] fence key (same hash tag as KEYS[1])
  KEYS[3] waiter counter key (same hash tag)
  KEYS[4] readers (sorted set token -> expiry ms, see read-acquire.lua; same hash tag)
  KEYS[5] waiting writers counter (same hash tag)
  KEYS[6] queue: ticket -> arrival (same hash tag)
  KEYS[7] queue entry expiries: ticket -> expiry ms (same hash tag)
  ARGV[1] token (random, chosen by the client)
  ARGV[2] lock TTL in ms (integer > 0)
  ARGV[3] fence key TTL in ms (integer > 0)
  ARGV[4] '0': a plain attempt; '1' a subscribed waiter not counted yet; '2' a counted waiter
  ARGV[5] waiter counter TTL in ms (integer > 0; read when ARGV[4] is '1' or '2')
  ARGV[6] the waiter's ticket (random, one per waiting acquire call), or '' for a plain attempt
  ARGV[7] queue entry TTL in ms (integer > 0)
  Returns {1, fence as a decimal string} when the lock was taken,
          {0, ms until the holder's lease runs out (-1: no expiry)} when it is held, or
          {0, ms until the queue head's entry expires unless renewed} when it is another's turn
]]
--- @include "../includes/lock-unwait"
--- @include "../includes/lock-lease"
local mode, ticket = ARGV[4], ARGV[6]
local now = redis.call('TIME')
local now_ms = lock_now_ms(now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now_ms)
if #dead > 0 then
  redis.call('ZREM', KEYS[6], unpack(dead))
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now_ms)
end
local wait
if redis.call('EXISTS', KEYS[4]) == 1 and lock_live_holders(KEYS[4], now_ms) > 0 then
  wait = lock_first_expiry(KEYS[4], now_ms)
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  wait = redis.call('PTTL', KEYS[1])
else
  -- Whose turn: the queue's head (an entry without an expiry, which the two keys' TTLs can leave
  -- behind, is a dead waiter's).
  while true do
    local head = redis.call('ZRANGE', KEYS[6], 0, 0)[1]
    if not head or head == ticket then
      break
    end
    local expiry = redis.call('ZSCORE', KEYS[7], head)
    if expiry then
      wait = tonumber(expiry) - now_ms
      break
    end
    redis.call('ZREM', KEYS[6], head)
  end
end
if wait then
  if ticket ~= '' then
    if not redis.call('ZSCORE', KEYS[6], ticket) then
      local arrival = tonumber(now[1]) * 1000000 + tonumber(now[2])
      local last = redis.call('ZRANGE', KEYS[6], -1, -1, 'WITHSCORES')[2]
      if last and tonumber(last) >= arrival then
        arrival = tonumber(last) + 1
      end
      redis.call('ZADD', KEYS[6], string.format('%.0f', arrival), ticket)
    end
    lock_hold(KEYS[7], ticket, now_ms, ARGV[7])
    if redis.call('PTTL', KEYS[6]) < tonumber(ARGV[7]) then
      redis.call('PEXPIRE', KEYS[6], ARGV[7])
    end
  end
  lock_count_writer(KEYS[3], KEYS[5], mode, ARGV[5])
  return {0, wait}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ticket ~= '' then
  redis.call('ZREM', KEYS[6], ticket)
  redis.call('ZREM', KEYS[7], ticket)
end
lock_uncount_writer(KEYS[3], KEYS[5], mode)
return {1, lock_next_fence(KEYS[2], now, ARGV[3])}
