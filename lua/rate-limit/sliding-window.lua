--[[
  Rate limit, algorithm "sliding-window" (see lua/includes/rate-limit-sliding-window.lua), for one or several rules of
  this algorithm checked and recorded atomically (all or nothing). Time is Redis TIME.

  KEYS[i]  the key of rule i; all keys of one call share one hash tag (the identifier)
  ARGV[1]  'c' to consume (record an admitted hit), 'p' to peek (record nothing)
  ARGV[2]  cost: units this hit takes (integer >= 1, at most every rule's limit)
  ARGV[3i], ARGV[3i+1], ARGV[3i+2]  rule i: algorithm code ('s'), limit (integer >= 1), window (integer ms >= 1)
  or, to consume with one rule (the common call, fewer arguments to send and to read):
  ARGV = { limit, window ms [, cost (default 1)] }

  Returns { allowed (1|0), tightest rule index (1-based), remaining units, reset ms, retry-after ms }
    reset ms        until the tightest rule's quota is fully restored
    retry-after ms  until this hit could be admitted (0 when allowed)
  or, when one rule admits a consume, the integer remaining * 2^33 + reset ms (exact: remaining
  <= 10^6 < 2^20, reset ms <= 2 windows < 2^33): an integer reply costs less to build and to parse.
  One rule (the common case) is served by straight-line code before the algorithm table is even
  defined: on that path only the state helper rl_sw_buckets (shared with the general path) and the reply
  are created per call.
]]
--- @include "../includes/rate-limit-sliding-window-buckets"
if #ARGV < 5 then
  -- One rule, admitted path straight-line.
  local key, cost, limit, window = KEYS[1], tonumber(ARGV[3] or 1), tonumber(ARGV[1]), ARGV[2] * 1000
  local t = redis.call('TIME')
  local now = t[1] * 1000000 + t[2]
  local idx = math.floor(now / window)
  local rest = window - (now - idx * window)
  local cur, prev = rl_sw_buckets(key, idx)
  local used = prev * rest + cur * window
  if used + cost * window <= limit * window then
    redis.call('SET', key, (idx % 4) * 4398046511104 + (cur + cost) * 2097152 + prev, 'PX', math.ceil((rest + window) / 1000))
    return (math.floor((limit * window - used) / window) - cost) * 8589934592 + math.ceil((rest + window) / 1000)
  end
  -- Denied: the general path below computes retry-after.
end
--- @include "../includes/rate-limit-sliding-window"
-- The algorithm of the compact form (see above), for the general path below.
local RL_CODE = 's'
--- @include "../includes/rate-limit-driver"
