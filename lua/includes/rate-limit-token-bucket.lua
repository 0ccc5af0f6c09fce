--- @include "rate-limit-common"
-- token-bucket ('t'): GCRA. One string key holds the theoretical arrival time (TAT, microseconds).
-- Emission interval T = ceil(window / limit) us, burst = limit: a hit is admitted when
-- TAT' = max(TAT, now) + cost * T is at most limit * T ahead of now. Integer arithmetic only.
RL['t'] = function(key, limit, window, now, cost)
  local interval = math.ceil(window / limit)
  local tolerance = interval * limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local after = tat + cost * interval
  local avail = math.floor((tolerance - (tat - now)) / interval)
  if avail < 0 then avail = 0 end
  local ok = after - now <= tolerance
  local retry = 0
  if not ok then retry = after - tolerance - now end
  local function record()
    redis.call('SET', key, rl_int(after), 'PX', math.ceil((after - now) / 1000))
    return after - now
  end
  return ok, avail, retry, tat - now, record
end
