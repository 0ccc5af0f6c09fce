#!lua flags=allow-oom
--[[
  Renews a semaphore permit only if it is held with the caller's token and has not expired (an
  expired permit counts as free: another holder may have taken its place).

  KEYS[1] holders (sorted set token -> expiry ms)
  ARGV[1] token of the holder
  ARGV[2] new TTL in ms, counted from now (integer > 0)
  Returns 1 when renewed, 0 when the permit is not held with this token (expired, released)
]]
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not expiry or expiry <= now_ms then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now_ms + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
