--- @include "rate-limit-common"
-- fixed-window ('f'): one counter that starts its window at the first admitted hit and expires
-- with it (PX). Denied hits are not counted.
RL['f'] = function(key, limit, window, now, cost)
  local count = tonumber(redis.call('GET', key)) or 0
  local ttl = window
  if count > 0 then
    local pttl = redis.call('PTTL', key)
    if pttl > 0 then ttl = pttl * 1000 end
  end
  local avail = limit - count
  if avail < 0 then avail = 0 end
  local ok = count + cost <= limit
  local retry = 0
  if not ok then retry = ttl end
  local reset = 0
  if count > 0 then reset = ttl end
  local function record()
    if count == 0 then
      redis.call('SET', key, cost, 'PX', math.floor(window / 1000))
    else
      redis.call('INCRBY', key, cost)
    end
    return ttl
  end
  return ok, avail, retry, reset, record
end
