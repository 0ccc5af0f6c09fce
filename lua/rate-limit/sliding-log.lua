#!lua
--[[
  Rate limit, algorithm "sliding-log" (see lua/includes/rate-limit-sliding-log.lua), for one or several rules of
  this algorithm checked and recorded atomically (all or nothing). Time is Redis TIME.

  KEYS[i]  the key of rule i; all keys of one call share one hash tag (the identifier)
  KEYS[#KEYS]  with bans on (rateLimit.bans), the identifier's ban key, after every other key;
           the full form's op is then upper case ('C', 'P'): see includes/rate-limit-ban.lua
  ARGV[1]  deadline: Redis TIME in ms after which the call records nothing and returns RL_LATE (-1)
           (see includes/rate-limit-deadline.lua)
  ARGV[2]  'c' to consume (record an admitted hit), 'p' to peek (record nothing), 'r' to refund
           `cost` units, 'g' to charge `cost` more units (both reply 0; see includes/rate-limit-driver.lua)
           or 'w<ms>' to consume waiting up to <ms> ms for the hit to fit (sliding-log and token-bucket
           rules only: see includes/rate-limit-driver.lua)
  ARGV[3]  cost: units this hit takes (integer >= 1, at most every rule's limit)
  ARGV[3i+1], ARGV[3i+2], ARGV[3i+3]  rule i: algorithm code ('l'), limit (integer >= 1), window (integer ms >= 1)
  then, when KEYS has 2n keys (KEYS[n + i]: rule i's block key): ARGV[3n + 3 + i] rule i's block
           duration in ms ('0' for none): a consume it denies blocks it that long
  or, to consume with one rule (the common call, fewer arguments to send and to read):
  ARGV = { deadline, limit, window ms [, cost (default 1)] }

  Returns { allowed (1|0), tightest rule index (1-based), remaining units, reset ms, retry-after ms }
    reset ms        until the tightest rule's quota is fully restored
    retry-after ms  until this hit could be admitted (0 when allowed)
  or RL_LATE (-1) when the call ran after its deadline (nothing recorded)
  or { 0, 0, 0, ms left, ms left, reason } when a ban denies (nothing read or recorded)
  or { 1, rule index, 0, reset ms, 0, delay ms } when a waiting consume was recorded delay ms ahead
  or, when one rule admits a consume, the integer remaining * RL_REMAINING_UNIT + reset ms (see
  includes/rate-limit-reply.lua).

  Why a single-rule path: one rule and one unit is the common call, and the general path below
  defines the algorithm table and the driver's functions (closures and tables created on every call)
  before it runs. The single-rule path runs first, with the member encoding inlined from
  includes/rate-limit-sliding-log-member (the one rl_log_member uses), so it creates nothing but the
  reply. It hands denials and member collisions to the general path, which repeats its reads.
]]
--- @include "../includes/rate-limit-deadline"
--- @include "../includes/rate-limit-ban"
--- @include "../includes/rate-limit-reply"
if #ARGV == 3 then
  local key, limit, window = KEYS[1], tonumber(ARGV[2]), ARGV[3] * 1000
  local t = rl_clock
  local now = t[1] * 1000000 + t[2]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local span = window + limit
  local m = now % span
  --- @inline "../includes/rate-limit-sliding-log-member"
  if count < limit and redis.call('ZADD', key, 'NX', now, m) == 1 then
    if count == 0 then
      redis.call('PEXPIRE', key, ARGV[3])
    else
      redis.call('PEXPIRE', key, ARGV[3], 'GT')
    end
    return (limit - count - 1) * RL_REMAINING_UNIT + ARGV[3]
  end
  -- Denied or a collision: the general path below decides (it repeats the idempotent reads).
end
--- @include "../includes/rate-limit-sliding-log"
-- The algorithm of the compact form (see above), for the general path below.
local RL_CODE = 'l'
--- @include "../includes/rate-limit-driver"
