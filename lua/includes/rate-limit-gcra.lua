-- GCRA state of a token-bucket key at `now` (microseconds) for a hit of `cost` units: the emission
-- interval T = ceil(window / limit), the theoretical arrival time (never before now), how far ahead
-- of now it would be after this hit (admitted when at most limit * T), and the units available now.
local function rl_gcra(key, limit, window, now, cost)
  local interval = math.ceil(window / limit)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local avail = math.floor((interval * limit - (tat - now)) / interval)
  if avail < 0 then avail = 0 end
  return interval, tat, tat - now + cost * interval, avail
end
