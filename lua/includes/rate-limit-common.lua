--[[
  Shared by the rate-limit scripts: the algorithm table and number formatting.

  Every algorithm is a function (key, limit, window, now, cost) -> ok, avail, retry, reset, record
    key     the rule's key (KEYS[i])
    limit   integer >= 1
    window  the window in microseconds
    now     Redis TIME in microseconds
    cost    units this hit takes (1 <= cost <= limit, checked by the caller)
  returning
    ok      true if `cost` units are available now
    avail   units available now, before this hit
    retry   microseconds until `cost` units are available (0 when ok)
    reset   microseconds until the quota is fully restored, if nothing is recorded
    record  function() that records the hit and returns `reset` after recording
]]
local RL = {}

-- Integers above 1e14 would be written as 1.7e+15 by tostring: format them in full.
local function rl_int(n)
  return string.format('%.0f', n)
end
