#!lua
--[[
  Replaces a board's stored configuration.

  KEYS[1] the board's configuration (hash)
  ARGV[1] order 'desc' | 'asc', or '' to leave unset (default desc)
  ARGV[2] maxEntries (integer >= 1), or '' to leave unset (unlimited)
  ARGV[3] historyLength (integer >= 0), or '' to leave unset (default 100)

  Returns 1.
]]
redis.call('DEL', KEYS[1])
local fields = {'order', 'maxEntries', 'historyLength'}
for i, field in ipairs(fields) do
  if ARGV[i] ~= '' then redis.call('HSET', KEYS[1], field, ARGV[i]) end
end
return 1
