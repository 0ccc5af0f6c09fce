#!lua flags=allow-oom
--[[
  Uncounts a waiter that stops waiting for a run (it gave up, or was aborted): see w in claim.lua.
  Best effort: a waiter that never calls it only costs the run's end one needless PUBLISH.

  KEYS[1] record key (see claim.lua)
  Returns the number of waiters still counted
]]
local n = tonumber(redis.call('HGET', KEYS[1], 'w') or '0') or 0
if n <= 1 then
  redis.call('HDEL', KEYS[1], 'w')
  return 0
end
return redis.call('HINCRBY', KEYS[1], 'w', -1)
