#!lua flags=allow-oom
--[[
  Empties a board: its scores and every member's history. The board's configuration is kept.
  O(number of members with a history): it deletes each history list.

  KEYS[1] the board's scores (sorted set)
  KEYS[2] the board's set of history keys (all in the board's hash tag, so in this slot)

  Returns the number of entries that were on the board.
]]
local entries = redis.call('ZCARD', KEYS[1])
local histories = redis.call('SMEMBERS', KEYS[2])
for i = 1, #histories, 500 do
  redis.call('UNLINK', unpack(histories, i, math.min(i + 499, #histories)))
end
redis.call('UNLINK', KEYS[1], KEYS[2])
return entries
