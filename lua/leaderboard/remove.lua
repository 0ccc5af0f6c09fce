#!lua flags=allow-oom
--[[
  Removes a member from a board, with its history.

  KEYS[1] the board's scores (sorted set)
  KEYS[2] the member's history (list)
  KEYS[3] the board's set of history keys
  ARGV[1] member

  Returns 1 if the member was on the board or had a history, else 0.
]]
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local had_history = redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], KEYS[2])
if removed + had_history > 0 then return 1 end
return 0
