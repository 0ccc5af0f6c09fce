#!lua
--[[
  The first step of a cache-aside read: returns the cached value, or takes the short loader lock
  so that exactly one caller loads a missing value, or says who holds the lock and for how long.

  KEYS[1] the cached value (string)
  KEYS[2] the loader lock (string holding the loader's token)
  ARGV[1] token of this caller (random, from the client)
  ARGV[2] lock ttl in ms

  Returns {1, value} on a hit; {2} when this caller now holds the lock and must load;
  {3, pttl} when another caller holds the lock (pttl: its remaining ms).
]]
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {3, redis.call('PTTL', KEYS[2])}
