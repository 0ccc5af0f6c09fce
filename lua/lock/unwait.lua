#!lua flags=allow-oom
--[[
  Uncounts a waiter that stops waiting without the lock (gave up after its wait, or was aborted):
  see the waiter count in acquire.lua. Best effort: a waiter that never calls it is forgotten when
  the counter's TTL runs out. A writer also uncounts itself from the waiting writers (KEYS[2]); when
  it was the last one, readers it kept out may go in: a notice wakes them. A fair waiter also leaves
  the queue (KEYS[3], KEYS[4], see fair-acquire.lua); when it was the head, a notice wakes the next.
  The notice is the queue head's ticket when fair waiters queue, 'released' otherwise.

  KEYS[1] waiter counter key of the resource
  KEYS[2] (writers only) waiting writers counter (same hash tag)
  KEYS[3] (writers only) fair queue (same hash tag)
  KEYS[4] (fair waiters only) queue entry expiries (same hash tag)
  ARGV[1] (writers only) pub/sub channel of the resource's release notices
  ARGV[2] (fair waiters only) the waiter's ticket
  Returns the number of waiters still counted
]]
--- @include "../includes/lock-unwait"
local left = lock_unwait(KEYS[1])
local wake = false
if KEYS[4] then
  wake = redis.call('ZRANGE', KEYS[3], 0, 0)[1] == ARGV[2]
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
if KEYS[2] and lock_unwait(KEYS[2]) == 0 then
  wake = true
end
if wake and left > 0 then
  redis.call('PUBLISH', ARGV[1], lock_notice(KEYS[3]))
end
return left
