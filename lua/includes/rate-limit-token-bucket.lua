--- @include "rate-limit-common"
-- token-bucket ('t'): GCRA. One string key holds the theoretical arrival time (TAT, microseconds).
-- Emission interval T = ceil(window / limit) us, burst = limit: a hit is admitted when
-- TAT' = max(TAT, now) + cost * T is at most limit * T ahead of now. Integer arithmetic only.
-- State between check and record: the stored TAT, 0 when the key does not exist. The key's deadline
-- is its TAT; the index is kept alive to the end of the window-long slot holding that deadline.
RL['t'] = {
  check = function(key, limit, window, cost)
    local now = rl_now()
    local interval = math.ceil(window / limit)
    local stored = tonumber(redis.call('GET', key)) or 0
    local tat = stored
    if tat < now then tat = now end
    local ahead = tat - now + cost * interval
    local avail = math.floor((interval * limit - (tat - now)) / interval)
    if avail < 0 then avail = 0 end
    if ahead <= interval * limit then return true, avail, 0, stored end
    return false, avail, ahead - interval * limit, stored
  end,

  record = function(key, limit, window, cost, stored)
    local now = rl_now()
    local tat = stored
    if tat < now then tat = now end
    local after = tat - now + cost * math.ceil(window / limit)
    -- A number argument reaches Redis as %.17g: exact for integers below 2^53.
    redis.call('SET', key, now + after, 'PX', math.ceil(after / 1000))
    local slot = math.floor((now + after) / window)
    if stored == 0 or slot ~= math.floor(stored / window) then
      rl_index(key, math.ceil(((slot + 1) * window - now) / 1000))
    end
    return after
  end,

  reset = function(key, limit, window, stored)
    local left = stored - rl_now()
    if left < 0 then return 0 end
    return left
  end,
}
