--[[
  Rate limit for several rules of different algorithms, checked and recorded atomically (all or
  nothing) in one call. Time is Redis TIME.

  KEYS[i]  the key of rule i; all keys of one call share one hash tag (the identifier)
  ARGV[1]  'c' to consume (record an admitted hit), 'p' to peek (record nothing)
  ARGV[2]  cost: units this hit takes (integer >= 1, at most every rule's limit)
  ARGV[3i], ARGV[3i+1], ARGV[3i+2]  rule i: algorithm code ('l' sliding-log, 's' sliding-window,
           't' token-bucket, 'f' fixed-window), limit (integer >= 1), window (integer ms >= 1)

  Returns { allowed (1|0), tightest rule index (1-based), remaining units, reset ms, retry-after ms }
    reset ms        until the tightest rule's quota is fully restored
    retry-after ms  until this hit could be admitted (0 when allowed)
  (Several rules never take the single-rule integer reply.)
]]
--- @include "../includes/rate-limit-sliding-log"
--- @include "../includes/rate-limit-sliding-window"
--- @include "../includes/rate-limit-token-bucket"
--- @include "../includes/rate-limit-fixed-window"
-- Always the full form of ARGV (several rules).
local RL_CODE = nil
--- @include "../includes/rate-limit-driver"
