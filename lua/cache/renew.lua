#!lua flags=allow-oom
--[[
  Renews the loader lock's lease while its loader runs, if this caller still holds it (a loader that
  crashed stops renewing, so its lock expires within one lease instead of lockTtlMs).

  KEYS[1] the loader lock
  ARGV[1] token of the loader
  ARGV[2] new lease in ms, counted from now (integer > 0)

  Returns 1 when renewed, 0 when this caller no longer holds the lock (expired, invalidated, taken).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
