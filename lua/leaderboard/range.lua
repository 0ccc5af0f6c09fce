#!lua flags=no-writes
--[[
  Ranked entries of a board by position: the top of the board (from an offset), or the entries
  around a member.

  KEYS[1] the board's scores (sorted set)
  KEYS[2] the board's configuration (hash)
  ARGV[1] order 'desc' | 'asc', or '' for the configured order
  ARGV[2] 'top' | 'around'
  ARGV[3] top: offset (0-based position of the first entry); around: the member
  ARGV[4] top: how many entries; around: radius (entries on each side of the member)

  Returns a flat array {member, score (string), rank, ...}, best first, ranks by competition
  ranking; empty when the board is empty, the offset is past the end, or the member is not on it.
]]
--- @include "../includes/leaderboard-config"
--- @include "../includes/leaderboard-rank"

local scores_key, config_key = KEYS[1], KEYS[2]
local order = board_order(config_key, ARGV[1])
local start, stop
if ARGV[2] == 'top' then
  start = tonumber(ARGV[3])
  stop = start + tonumber(ARGV[4]) - 1
else
  local position = board_position(scores_key, order, ARGV[3])
  if not position then return {} end
  local radius = tonumber(ARGV[4])
  start = math.max(0, position - radius)
  stop = position + radius
end
return ranked_range(scores_key, order, start, stop)
