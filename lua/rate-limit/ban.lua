#!lua
--[[
  Manual bans of a rate-limit identifier (RateLimiterService.block / unblock / isBlocked; checked by
  every consume and peek that carries the ban key: see includes/rate-limit-ban.lua).

  KEYS[1]  the identifier's ban key (<prefix>:rl:{<identifier>}:ban, the hash tag of its limits)
  ARGV[1]  'b' to ban (replaces any ban: its duration starts now), 'u' to lift it, 's' to read it
  ARGV[2]  'b': the duration in ms (integer >= 1)
  ARGV[3]  'b': the reason ('' for none), kept as the key's value

  Returns 'b': 1;  'u': 1 if a ban was lifted, 0 if there was none;
          's': { ms left (0 when not banned), reason ('' for none or when not banned) }
]]
local key, op = KEYS[1], ARGV[1]
if op == 'b' then
  redis.call('SET', key, ARGV[3], 'PX', ARGV[2])
  return 1
elseif op == 'u' then
  return redis.call('DEL', key)
end
local left = redis.call('PTTL', key)
if left <= 0 then return { 0, '' } end
return { left, redis.call('GET', key) }
