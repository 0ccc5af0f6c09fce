#!lua
--[[
  Rate limit for several rules of different algorithms, checked and recorded atomically (all or
  nothing) in one call. Time is Redis TIME.

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
  ARGV[3i+1], ARGV[3i+2], ARGV[3i+3]  rule i: algorithm code ('l' sliding-log, 's' sliding-window,
           't' token-bucket, 'f' fixed-window), limit (integer >= 1), window (integer ms >= 1)
  then, when KEYS has 2n keys (KEYS[n + i]: rule i's block key): ARGV[3n + 3 + i] rule i's block
           duration in ms ('0' for none): a consume it denies blocks it that long

  Returns { allowed (1|0), tightest rule index (1-based), remaining units, reset ms, retry-after ms }
    reset ms        until the tightest rule's quota is fully restored
    retry-after ms  until this hit could be admitted (0 when allowed)
  or RL_LATE (-1) when the call ran after its deadline (nothing recorded)
  or { 0, 0, 0, ms left, ms left, reason } when a ban denies (nothing read or recorded)
  or { 1, rule index, 0, reset ms, 0, delay ms } when a waiting consume was recorded delay ms ahead
  (Several rules never take the single-rule integer reply.)
]]
--- @include "../includes/rate-limit-deadline"
--- @include "../includes/rate-limit-ban"
--- @include "../includes/rate-limit-sliding-log"
--- @include "../includes/rate-limit-sliding-window"
--- @include "../includes/rate-limit-token-bucket"
--- @include "../includes/rate-limit-fixed-window"
-- Always the full form of ARGV (several rules).
local RL_CODE = nil
--- @include "../includes/rate-limit-driver"
