#!lua
--[[
  Rate limit, algorithm "fixed-window" (see lua/includes/rate-limit-fixed-window.lua), for one or several rules of
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
  ARGV[3i+1], ARGV[3i+2], ARGV[3i+3]  rule i: algorithm code ('f'), limit (integer >= 1), window (integer ms >= 1)
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
  runs. Unlike the other algorithms' single-rule paths, this one does not share the general path's
  statements: it counts first (INCRBY) and undoes a denied hit (DECRBY), one command on an admitted
  hit (two when it opens the window) where check-then-record takes three (GET, PTTL, INCRBY): 4.2
  against 6.2 µs of Redis time per call in bench/tools/lua-cost.ts. The general path cannot count
  first: it checks every rule before it records in any (all or nothing), and a peek must not write.
  The net effect is the same (denied hits are not counted; the window starts at the first admitted
  hit and ends with the key's TTL), which test/rate-limit checks on both paths.
]]
--- @include "../includes/rate-limit-deadline"
--- @include "../includes/rate-limit-ban"
--- @include "../includes/rate-limit-reply"
if #ARGV < 6 then
  local key, cost, limit = KEYS[1], tonumber(ARGV[4] or 1), tonumber(ARGV[2])
  local count = redis.call('INCRBY', key, cost)
  if count == cost then
    redis.call('PEXPIRE', key, ARGV[3])
    return (limit - cost) * RL_REMAINING_UNIT + ARGV[3]
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    -- A counter without expiry (written by something else): it gets this window's.
    ttl = tonumber(ARGV[3])
    redis.call('PEXPIRE', key, ttl)
  end
  if count <= limit then return (limit - count) * RL_REMAINING_UNIT + ttl end
  redis.call('DECRBY', key, cost)
  local avail = limit - count + cost
  if avail < 0 then avail = 0 end
  return { 0, 1, avail, ttl, ttl }
end
--- @include "../includes/rate-limit-fixed-window"
-- The algorithm of the compact form (see above), for the general path below.
local RL_CODE = 'f'
--- @include "../includes/rate-limit-driver"
