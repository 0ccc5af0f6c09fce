--[[
  Rate limit, algorithm "fixed-window" (see lua/includes/rate-limit-fixed-window.lua), for one or several rules of
  this algorithm checked and recorded atomically (all or nothing). Time is Redis TIME.

  KEYS[i]  the key of rule i; all keys of one call share one hash tag (the identifier)
  ARGV[1]  'c' to consume (record an admitted hit), 'p' to peek (record nothing)
  ARGV[2]  cost: units this hit takes (integer >= 1, at most every rule's limit)
  ARGV[3i], ARGV[3i+1], ARGV[3i+2]  rule i: algorithm code ('f'), limit (integer >= 1), window (integer ms >= 1)

  Returns { allowed (1|0), tightest rule index (1-based), remaining units, reset ms, retry-after ms }
    reset ms        until the tightest rule's quota is fully restored
    retry-after ms  until this hit could be admitted (0 when allowed)
]]
--- @include "../includes/rate-limit-fixed-window"
--- @include "../includes/rate-limit-driver"
