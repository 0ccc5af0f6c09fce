--[[
  bump.lua: counts calls, one counter per key.

  KEYS[1]  the counter (a string holding an integer; created at 0 if missing)
  ARGV     none
  Returns  the counter's value after adding 1 (an integer: 1 on the first call, then 2, ...)
]]
return redis.call('INCR', KEYS[1])
