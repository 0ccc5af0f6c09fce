#!lua
--[[
  Takes a read lock: shared by any number of readers, excluded by a writer (lock/acquire.lua) that
  holds the resource or waits for it (a waiting writer keeps new readers out, so that a stream of
  readers cannot starve it; readers already in keep their lock). Hands out the resource's next
  fencing token from the fence key writers use, and counts subscribed waiters as lock/acquire.lua
  does.

  Readers are a sorted set: member = the reader's token, score = when its lease expires (Redis TIME
  in ms). Expired readers are dropped before a writer's attempt, so a reader that died stops
  excluding writers within its TTL. The set lives as long as its latest reader.

  KEYS[1] readers (sorted set token -> expiry ms)
  KEYS[2] fence key (same hash tag)
  KEYS[3] waiter counter key (same hash tag)
  KEYS[4] lock key of the resource's writer (same hash tag)
  KEYS[5] waiting writers counter (same hash tag)
  ARGV[1] token (random, chosen by the client)
  ARGV[2] lease TTL in ms (integer > 0)
  ARGV[3] fence key TTL in ms (integer > 0)
  ARGV[4] '0' or absent: a plain attempt; '1' a subscribed waiter not counted yet; '2' a counted waiter
  ARGV[5] waiter counter TTL in ms (read when ARGV[4] is '1' or '2')
  Returns {1, fence as a decimal string} when the read lock was taken,
          {0, ms until the writer's lease runs out, or until the waiting writers' count expires}
          when a writer holds or waits for the resource
]]
--- @include "../includes/lock-unwait"
--- @include "../includes/lock-lease"
local mode = ARGV[4] or '0'
local busy = redis.call('PTTL', KEYS[4])
if busy == -2 and (tonumber(redis.call('GET', KEYS[5]) or '0') or 0) > 0 then
  busy = redis.call('PTTL', KEYS[5])
end
if busy ~= -2 then
  lock_count_waiter(KEYS[3], mode, ARGV[5])
  return {0, busy}
end
if mode == '2' then
  lock_unwait(KEYS[3])
end
local now = redis.call('TIME')
lock_hold(KEYS[1], ARGV[1], lock_now_ms(now), ARGV[2])
return {1, lock_next_fence(KEYS[2], now, ARGV[3])}
