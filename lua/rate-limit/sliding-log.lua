--[[
  Rate limit, algorithm "sliding-log" (see lua/includes/rate-limit-sliding-log.lua), for one or several rules of
  this algorithm checked and recorded atomically (all or nothing). Time is Redis TIME.

  KEYS[i]  the key of rule i; all keys of one call share one hash tag (the identifier)
  ARGV[1]  'c' to consume (record an admitted hit), 'p' to peek (record nothing)
  ARGV[2]  cost: units this hit takes (integer >= 1, at most every rule's limit)
  ARGV[3i], ARGV[3i+1], ARGV[3i+2]  rule i: algorithm code ('l'), limit (integer >= 1), window (integer ms >= 1)
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
if #ARGV == 2 then
  -- One rule, one unit: the common admitted path (see rate-limit-sliding-log for the members).
  local key, limit, window = KEYS[1], tonumber(ARGV[1]), ARGV[2] * 1000
  local t = redis.call('TIME')
  local now = t[1] * 1000000 + t[2]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local span = window + limit
  local m = now % span
  if limit > 128 or span > 2147483647 then
    -- Raw little-endian bytes instead of a decimal string or a 64-bit listpack integer (the same
    -- encoding as rl_log_member: 5 bytes, 6 for windows over 12 days).
    local b1 = m % 256; m = (m - b1) / 256
    local b2 = m % 256; m = (m - b2) / 256
    local b3 = m % 256; m = (m - b3) / 256
    local b4 = m % 256; m = (m - b4) / 256
    local b5 = m % 256
    if span <= 1099511627776 then
      m = string.char(b1, b2, b3, b4, b5)
    else
      m = string.char(b1, b2, b3, b4, b5, ((m - b5) / 256) % 256)
    end
  end
  if count < limit and redis.call('ZADD', key, 'NX', now, m) == 1 then
    if count == 0 then
      redis.call('PEXPIRE', key, ARGV[2])
    else
      redis.call('PEXPIRE', key, ARGV[2], 'GT')
    end
    return (limit - count - 1) * 8589934592 + ARGV[2]
  end
  -- Denied or a collision: the general path below decides (it repeats the idempotent reads).
end
--- @include "../includes/rate-limit-sliding-log"
-- The algorithm of the compact form (see above), for the general path below.
local RL_CODE = 'l'
-- The algorithm of the compact form (see above), for the general path below.
local RL_CODE = 'l'
--- @include "../includes/rate-limit-driver"
