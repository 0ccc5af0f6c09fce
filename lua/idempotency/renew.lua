#!lua flags=allow-oom
--[[
  Renews a running claim's lease (the runner's watchdog), only under the claim's own token.

  KEYS[1] record key (see claim.lua)
  ARGV[1] token of the claim
  ARGV[2] lease in ms (integer > 0)
  Returns 1 when renewed, 0 when the claim is no longer the caller's (expired, completed, taken)
]]
if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
