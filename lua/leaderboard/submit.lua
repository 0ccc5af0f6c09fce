#!lua
--[[
  Submits a score for a member in one atomic step: applies it to the board by mode, records it in
  the member's history, trims the board to its size limit and reports the outcome.

  KEYS[1] the board's scores (sorted set)
  KEYS[2] the board's configuration (hash: order, maxEntries, historyLength)
  KEYS[3] the member's history (list, newest first, entries "<ms>:<score>")
  KEYS[4] the board's set of history keys (so that reset finds every history)
  ARGV[1] member
  ARGV[2] score, a finite decimal number
  ARGV[3] mode: 'best' (keep the better score) | 'latest' (overwrite) | 'increment' (add)
  ARGV[4] order 'desc' | 'asc', or '' for the board's configured order (default desc)
  ARGV[5] maxEntries (integer >= 1, 0 = unlimited), or '' for the configured value (default 0)
  ARGV[6] historyLength (integer >= 0, 0 = no history), or '' for the configured value (default 100)

  Returns {rank, score, personalBest, previousBest}:
    rank          competition rank after the submit, or nil when the member is not on the board
                  (trimmed off, or never entered)
    score         the member's board score after the submit (string), or nil when not on the board
    personalBest  1 when the member is on the board and its score improved (or it just entered), else 0
    previousBest  the member's board score before the submit (string), or nil
  or LB_OVERFLOW (-1), changing nothing, when an increment would take the score to +/-infinity.
]]
--- @include "../includes/leaderboard-config"
--- @include "../includes/leaderboard-rank"

-- The reply of an increment that would overflow (the `@export` mark hands it to the TypeScript side).
local LB_OVERFLOW = -1 --- @export

local scores_key, config_key, history_key, histories_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member, score, mode = ARGV[1], ARGV[2], ARGV[3]
local order = board_order(config_key, ARGV[4])
local max_entries = tonumber(board_setting(config_key, 'maxEntries', ARGV[5], '0'))
local history_length = tonumber(board_setting(config_key, 'historyLength', ARGV[6], '100'))
local value = tonumber(score)
if value == nil then error('score is not a number: ' .. tostring(score)) end

-- true when score a is strictly better than score b on this board
local function better(a, b)
  if order == 'desc' then return a > b end
  return a < b
end

local previous = redis.call('ZSCORE', scores_key, member)
if mode == 'best' then
  if not previous or better(value, tonumber(previous)) then
    redis.call('ZADD', scores_key, score, member)
  end
elseif mode == 'latest' then
  redis.call('ZADD', scores_key, score, member)
elseif mode == 'increment' then
  -- Redis would store inf (and answer it as a score that submit itself refuses): refuse instead.
  local sum = (tonumber(previous) or 0) + value
  if sum == math.huge or sum == -math.huge then return LB_OVERFLOW end
  redis.call('ZINCRBY', scores_key, score, member)
else
  error('invalid submit mode: ' .. tostring(mode))
end

if history_length > 0 then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('LPUSH', history_key, string.format('%d', ms) .. ':' .. score)
  redis.call('LTRIM', history_key, 0, history_length - 1)
  redis.call('SADD', histories_key, history_key)
end

if max_entries > 0 then
  local excess = redis.call('ZCARD', scores_key) - max_entries
  if excess > 0 and not previous then
    -- A newcomer enters a full board only if it beats the worst entry: one that merely ties it does
    -- not push out a member already on the board (ZREMRANGEBYRANK alone would break the tie by name).
    local worst
    if order == 'desc' then
      worst = redis.call('ZRANGE', scores_key, 0, 0, 'WITHSCORES')
    else
      worst = redis.call('ZRANGE', scores_key, -1, -1, 'WITHSCORES')
    end
    local mine = tonumber(redis.call('ZSCORE', scores_key, member))
    if not better(mine, tonumber(worst[2])) then
      redis.call('ZREM', scores_key, member)
      excess = excess - 1
    end
  end
  if excess > 0 then
    -- the worst entries: the lowest scores on a desc board, the highest on an asc board
    if order == 'desc' then
      redis.call('ZREMRANGEBYRANK', scores_key, 0, excess - 1)
    else
      redis.call('ZREMRANGEBYRANK', scores_key, -excess, -1)
    end
  end
end

local current = redis.call('ZSCORE', scores_key, member)
if not current then
  return {false, false, 0, previous}
end
local improved = (not previous) or better(tonumber(current), tonumber(previous))
return {competition_rank(scores_key, order, current), current, improved and 1 or 0, previous}
