#!lua flags=allow-oom
--[[
  Releases a lock only if it is still held with the caller's token, then wakes the waiters if any
  may exist: the notice is published only while the waiter counter (see acquire.lua) is above 0, so
  an uncontended release costs no PUBLISH (on a cluster, one that would cross the cluster bus to
  every node).

  The notice is the ticket of the fair queue's head when fair waiters queue (fair-acquire.lua:
  it wakes that waiter), 'released' otherwise.

  KEYS[1] lock key
  KEYS[2] waiter counter key (same hash tag as KEYS[1])
  KEYS[3] fair queue (sorted set ticket -> arrival, see fair-acquire.lua; same hash tag)
  ARGV[1] token of the holder releasing it
  ARGV[2] pub/sub channel of the resource's release notices
  Returns 1 when the lock was released (and a notice published if a waiter is counted),
          0 when it is not held with this token (expired, released, or held by someone else)
]]
--- @include "../includes/lock-unwait"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if (tonumber(redis.call('GET', KEYS[2]) or '0') or 0) > 0 then
  redis.call('PUBLISH', ARGV[2], lock_notice(KEYS[3]))
end
return 1
