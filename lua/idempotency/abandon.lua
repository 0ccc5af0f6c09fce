#!lua flags=allow-oom
--[[
  Drops a claim without a result (the run failed, or its result is not to be stored), so that a
  retry runs again; notifies the waiters counted in w, one of which may claim the key now. Only the
  claim's own token drops it.

  KEYS[1] record key (see claim.lua)
  ARGV[1] token of the claim
  ARGV[2] pub/sub channel of the key's run ends
  Returns 1 when the claim was dropped, 0 when it was not the caller's (expired, completed, taken)
]]
if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then
  return 0
end
local waiters = tonumber(redis.call('HGET', KEYS[1], 'w') or '0') or 0
redis.call('DEL', KEYS[1])
if waiters > 0 then
  redis.call('PUBLISH', ARGV[2], 'dropped')
end
return 1
