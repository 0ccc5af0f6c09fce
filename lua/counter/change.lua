#!lua
--[[
  Adds a signed amount to an integer counter unless the result would pass a bound (the bounded
  counter of the seed guide, with both directions). A missing counter counts as 0.

  KEYS[1] the counter (string holding an integer)
  ARGV[1] delta, a non-zero integer (positive: increment, negative: decrement)
  ARGV[2] the bound: the maximum for a positive delta, the minimum for a negative one
  ARGV[3] ttl in ms applied when the change creates the counter, or '' for none
          (an existing counter keeps its expiry)

  Returns {applied (0|1), value}: the value after the change, or the unchanged value if refused,
  as a decimal string (ioredis decodes integer replies near 2^53 inexactly).
]]
local delta = tonumber(ARGV[1])
local bound = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local current = tonumber(stored or '0')
if current == nil then error('counter does not hold an integer: ' .. KEYS[1]) end
local next_value = current + delta
if (delta > 0 and next_value > bound) or (delta < 0 and next_value < bound) then
  return {0, stored or '0'}
end
redis.call('INCRBY', KEYS[1], ARGV[1])
if not stored and ARGV[3] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, redis.call('GET', KEYS[1])}
