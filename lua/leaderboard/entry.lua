#!lua flags=no-writes
--[[
  One member's standing on a board.

  KEYS[1] the board's scores (sorted set)
  KEYS[2] the board's configuration (hash)
  ARGV[1] member
  ARGV[2] order 'desc' | 'asc', or '' for the configured order

  Returns {rank, score (string)} by competition ranking, or nil when the member is not on the board.
]]
--- @include "../includes/leaderboard-config"
--- @include "../includes/leaderboard-rank"

local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return false end
return {competition_rank(KEYS[1], board_order(KEYS[2], ARGV[2]), score), score}
