--- @include "rate-limit-common"
--- @include "rate-limit-gcra"
-- token-bucket ('t'): GCRA. One string key holds the theoretical arrival time (TAT, microseconds).
-- Emission interval T = ceil(window / limit) us, burst = limit: a hit is admitted when
-- TAT' = max(TAT, now) + cost * T is at most limit * T ahead of now. Integer arithmetic only.
RL['t'] = {
  check = function(key, limit, window, cost)
    local interval, tat, ahead, avail = rl_gcra(key, limit, window, rl_now(), cost)
    if ahead <= interval * limit then return true, avail, 0, tat end
    return false, avail, ahead - interval * limit, tat
  end,

  record = function(key, limit, window, cost, tat)
    local now = rl_now()
    local after = tat - now + cost * math.ceil(window / limit)
    -- A number argument reaches Redis as %.17g: exact for integers below 2^53.
    redis.call('SET', key, now + after, 'PX', math.ceil(after / 1000))
    return after
  end,

  reset = function(key, limit, window, tat)
    return tat - rl_now()
  end,
}
