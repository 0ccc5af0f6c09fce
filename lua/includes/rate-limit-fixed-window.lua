--- @include "rate-limit-common"
-- fixed-window ('f'): one counter that starts its window at the first admitted hit and expires
-- with it (PX). Denied hits are not counted. Needs no clock: the key's TTL is the window's end.
-- State between check and record: the window's time left (us), 0 when no window is open.
RL['f'] = {
  check = function(key, limit, window, cost)
    local count = tonumber(redis.call('GET', key)) or 0
    local ttl = window
    if count > 0 then
      local pttl = redis.call('PTTL', key)
      if pttl > 0 then ttl = pttl * 1000 end
    end
    local avail = limit - count
    if avail < 0 then avail = 0 end
    local open = 0
    if count > 0 then open = ttl end
    if count + cost <= limit then return true, avail, 0, open end
    return false, avail, ttl, open
  end,

  record = function(key, limit, window, cost, open)
    if open == 0 then
      redis.call('SET', key, cost, 'PX', window / 1000)
      return window
    end
    redis.call('INCRBY', key, cost)
    return open
  end,

  reset = function(key, limit, window, open)
    return open
  end,
}
