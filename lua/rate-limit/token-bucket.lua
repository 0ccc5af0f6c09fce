#!lua
--[[
  Rate limit, algorithm "token-bucket" (see lua/includes/rate-limit-token-bucket.lua), for one or several rules of
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
  ARGV[3i+1], ARGV[3i+2], ARGV[3i+3]  rule i: algorithm code ('t'), limit (integer >= 1), window (integer ms >= 1)
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

  Why a single-rule path: one rule is the common call, and the general path below defines the
  algorithm table and the driver's functions (closures and tables created on every call) before it
  runs. The single-rule path runs first, with the same state and write (rl_gcra and the statements
  inlined from includes/rate-limit-token-bucket-write); only rl_gcra and the reply are created.
]]
--- @include "../includes/rate-limit-deadline"
--- @include "../includes/rate-limit-ban"
--- @include "../includes/rate-limit-reply"
--- @include "../includes/rate-limit-gcra"
if #ARGV < 6 then
  local key, cost, limit, window = KEYS[1], tonumber(ARGV[4] or 1), tonumber(ARGV[2]), ARGV[3] * 1000
  local t = rl_clock
  local now = t[1] * 1000000 + t[2]
  local interval, tat, ahead, avail = rl_gcra(key, limit, window, now, cost)
  if ahead <= interval * limit then
    --- @inline "../includes/rate-limit-token-bucket-write"
    return (avail - cost) * RL_REMAINING_UNIT + math.ceil(ahead / 1000)
  end
  return { 0, 1, avail, math.ceil((tat - now) / 1000), math.ceil((ahead - interval * limit) / 1000) }
end
--- @include "../includes/rate-limit-token-bucket"
-- The algorithm of the compact form (see above), for the general path below.
local RL_CODE = 't'
--- @include "../includes/rate-limit-driver"
