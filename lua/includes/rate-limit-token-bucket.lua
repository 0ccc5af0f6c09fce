--- @include "rate-limit-common"
--- @include "rate-limit-gcra"
-- token-bucket ('t'): GCRA. One string key holds the theoretical arrival time (TAT, microseconds).
-- Emission interval T = ceil(window / limit) us, burst = limit: a hit is admitted when
-- TAT' = max(TAT, now) + cost * T is at most limit * T ahead of now. Integer arithmetic only. The
-- state (rl_gcra) and the write (inlined from rate-limit-token-bucket-write) are shared with the
-- single-rule path of token-bucket.lua.
RL['t'] = {
  check = function(key, limit, window, cost)
    local interval, tat, ahead, avail = rl_gcra(key, limit, window, rl_now(), cost)
    if ahead <= interval * limit then return true, avail, 0, tat end
    return false, avail, ahead - interval * limit, tat
  end,

  record = function(key, limit, window, cost, tat)
    local now = rl_now()
    local ahead = tat - now + cost * math.ceil(window / limit)
    --- @inline "rate-limit-token-bucket-write"
    return ahead
  end,

  reset = function(key, limit, window, tat)
    return tat - rl_now()
  end,

  -- The arrival time moves back by `cost` intervals, never before now (a full bucket: no key).
  refund = function(key, limit, window, cost)
    local now = rl_now()
    local tat = tonumber(redis.call('GET', key))
    if not tat then return end
    local ahead = tat - cost * math.ceil(window / limit) - now
    if ahead <= 0 then
      redis.call('DEL', key)
      return
    end
    --- @inline "rate-limit-token-bucket-write"
  end,

  -- Waiting (includes/rate-limit-driver, op 'w'): GCRA schedules by itself. The hit fits once the
  -- arrival time is at most the burst ahead; recording it now moves the arrival time past the burst,
  -- which every later hit sees (first come, first served).
  at = function(key, limit, window, cost)
    local now = rl_now()
    local interval, _, ahead = rl_gcra(key, limit, window, now, cost)
    if ahead <= interval * limit then return now end
    return now + ahead - interval * limit
  end,

  schedule = function(key, limit, window, cost, at)
    local now = rl_now()
    local _, tat = rl_gcra(key, limit, window, now, cost)
    local ahead = tat - now + cost * math.ceil(window / limit)
    --- @inline "rate-limit-token-bucket-write"
    return ahead
  end,
}
