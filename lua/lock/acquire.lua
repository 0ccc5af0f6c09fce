#!lua
--[[
  Takes a lock (the exclusive, write, mode) if no one holds it: no other holder (SET NX PX) and no
  live reader (see read-acquire.lua). Hands out the resource's next fencing token; keeps the count
  of subscribed waiters, so that a release publishes a notice only when someone may wait, and of
  waiting writers, which keeps new readers out so that a stream of readers cannot starve a writer.

  The fence is max(last fence + 1, Redis TIME in microseconds). The fence key keeps the last fence
  for ARGV[3] ms after the latest acquisition, so fences strictly increase while it lives, even if
  two acquisitions fall in one microsecond or the server clock steps back by less than that time;
  once it has expired the fence restarts from the clock, which is past every fence handed out as long
  as the Redis clock does not go back. One small key per resource, gone after ARGV[3] ms idle.

  Waiter count: a waiter, once subscribed to the release channel, makes its attempts with ARGV[4]
  = '1' (not counted yet) or '2' (counted). An attempt that finds the lock held counts it (INCR, in
  the same call as the failed attempt: a release after this call sees the count and publishes; a
  release before it left the lock free for this attempt, or the lock was taken again by an owner
  whose own release will see the count) and keeps the counter alive for ARGV[5] ms at least (the
  waiter's remaining wait plus a margin: a crashed waiter is forgotten after that). A counted waiter
  that takes the lock uncounts itself here; one that gives up calls unwait.lua. A waiting writer is
  counted the same way in KEYS[5] too.

  KEYS[1] lock key (its value is the holder's token)
  KEYS[2] fence key (the last fence handed out; same hash tag as KEYS[1])
  KEYS[3] waiter counter key (same hash tag)
  KEYS[4] readers (sorted set token -> expiry ms, see read-acquire.lua; same hash tag)
  KEYS[5] waiting writers counter (same hash tag)
  ARGV[1] token (random, chosen by the client)
  ARGV[2] lock TTL in ms (integer > 0)
  ARGV[3] fence key TTL in ms (integer > 0)
  ARGV[4] '0' or absent: a plain attempt (no waiter counting); '1' a subscribed waiter not counted
          yet; '2' a counted waiter
  ARGV[5] waiter counter TTL in ms (integer > 0; given and read when ARGV[4] is '1' or '2')
  Returns {1, fence as a decimal string} when the lock was taken,
          {0, ms until the holder's lease runs out (-1 if the key has no expiry)} when it is held
          by another writer or by readers
]]
--- @include "../includes/lock-unwait"
--- @include "../includes/lock-lease"
local mode = ARGV[4] or '0'
local now = redis.call('TIME')
local busy
if redis.call('EXISTS', KEYS[4]) == 1 then
  local now_ms = lock_now_ms(now)
  if lock_live_holders(KEYS[4], now_ms) > 0 then
    busy = lock_first_expiry(KEYS[4], now_ms)
  end
end
if busy or not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  lock_count_writer(KEYS[3], KEYS[5], mode, ARGV[5])
  return {0, busy or redis.call('PTTL', KEYS[1])}
end
lock_uncount_writer(KEYS[3], KEYS[5], mode)
return {1, lock_next_fence(KEYS[2], now, ARGV[3])}
