--[[
  Rate limit, algorithm "fixed-window" (see lua/includes/rate-limit-fixed-window.lua), for one or several rules of
  this algorithm checked and recorded atomically (all or nothing). Time is Redis TIME.

  KEYS[i]  the key of rule i; all keys of one call share one hash tag (the identifier)
  ARGV[1]  'c' to consume (record an admitted hit), 'p' to peek (record nothing)
  ARGV[2]  cost: units this hit takes (integer >= 1, at most every rule's limit)
  ARGV[3i], ARGV[3i+1], ARGV[3i+2]  rule i: algorithm code ('f'), limit (integer >= 1), window (integer ms >= 1)
  or, to consume with one rule (the common call, fewer arguments to send and to read):
  ARGV = { limit, window ms [, cost (default 1)] }

  Returns { allowed (1|0), tightest rule index (1-based), remaining units, reset ms, retry-after ms }
    reset ms        until the tightest rule's quota is fully restored
    retry-after ms  until this hit could be admitted (0 when allowed)
  or, when one rule admits a consume, the integer remaining * 2^33 + reset ms (exact: remaining
  <= 10^6 < 2^20, reset ms <= 2 windows < 2^33): an integer reply costs less to build and to parse.
  One rule (the common case) is served by straight-line code before the shared functions are even
  defined: no closures or tables are created per call on that path, only the reply.
]]
if #ARGV < 5 then
  -- One rule: count first, undo when over the limit (net effect: denied hits are not counted).
  local key, cost, limit = KEYS[1], tonumber(ARGV[3] or 1), tonumber(ARGV[1])
  local count = redis.call('INCRBY', key, cost)
  if count == cost then
    redis.call('PEXPIRE', key, ARGV[2])
    return (limit - cost) * 8589934592 + ARGV[2]
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[2])
    redis.call('PEXPIRE', key, ttl)
  end
  if count <= limit then return (limit - count) * 8589934592 + ttl end
  redis.call('DECRBY', key, cost)
  local avail = limit - count + cost
  if avail < 0 then avail = 0 end
  return { 0, 1, avail, ttl, ttl }
end
--- @include "../includes/rate-limit-fixed-window"
-- The algorithm of the compact form (see above), for the general path below.
local RL_CODE = 'f'
--- @include "../includes/rate-limit-driver"
