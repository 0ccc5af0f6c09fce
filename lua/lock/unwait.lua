#!lua flags=allow-oom
--[[
  Uncounts a waiter that stops waiting without the lock (gave up after its wait, or was aborted):
  see the waiter count in acquire.lua. Best effort: a waiter that never calls it is forgotten when
  the counter's TTL runs out. A writer also uncounts itself from the waiting writers (KEYS[2]); when
  it was the last one, readers it kept out may go in: a notice wakes them.

  KEYS[1] waiter counter key of the resource
  KEYS[2] (writers only) waiting writers counter (same hash tag)
  ARGV[1] (writers only) pub/sub channel of the resource's release notices
  Returns the number of waiters still counted
]]
--- @include "../includes/lock-unwait"
local left = lock_unwait(KEYS[1])
if KEYS[2] and lock_unwait(KEYS[2]) == 0 and left > 0 then
  redis.call('PUBLISH', ARGV[1], 'released')
end
return left
