--[[
  Takes a lock if it is free (SET NX PX) and hands out the resource's next fencing token.

  The fence is max(last fence + 1, Redis TIME in microseconds). The fence key keeps the last fence
  for ARGV[3] ms after the latest acquisition, so fences strictly increase while it lives, even if
  two acquisitions fall in one microsecond or the server clock steps back by less than that time;
  once it has expired the fence restarts from the clock, which is past every fence handed out as long
  as the Redis clock does not go back. One small key per resource, gone after ARGV[3] ms idle.

  KEYS[1] lock key (its value is the holder's token)
  KEYS[2] fence key (the last fence handed out; same hash tag as KEYS[1])
  ARGV[1] token (random, chosen by the client)
  ARGV[2] lock TTL in ms (integer > 0)
  ARGV[3] fence key TTL in ms (integer > 0)
  Returns {1, fence as a decimal string} when the lock was taken,
          {0, holder's remaining TTL in ms (PTTL; -1 if the key has no expiry)} when it is held
]]
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
local now = redis.call('TIME')
local fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if last >= fence then
  fence = last + 1
end
-- '%.0f': tostring() would print 16-digit numbers in exponent form and lose digits.
local text = string.format('%.0f', fence)
redis.call('SET', KEYS[2], text, 'PX', ARGV[3])
return {1, text}
