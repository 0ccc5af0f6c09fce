--- @include "rate-limit-common"
-- fixed-window ('f'): one counter that starts its window at the first admitted hit and expires
-- with it (PX). Denied hits are not counted. Needs no clock: the key's TTL is the window's end.
-- State between check and record: the open window's µs left (0 when it ends now: a new one opens),
-- or 0 - count when the counter has no expiry (written by something else): it gets one.
RL['f'] = {
  check = function(key, limit, window, cost)
    local count = tonumber(redis.call('GET', key)) or 0
    local s, ttl = -count, window
    if count > 0 then
      local pttl = redis.call('PTTL', key)
      if pttl >= 0 then
        -- 0 in the window's last millisecond: a record then opens a fresh window with this hit only.
        ttl = pttl * 1000
        s = ttl
      end
    end
    local avail = limit - count
    if avail < 0 then avail = 0 end
    local ok = count + cost <= limit
    local retry = 0
    if not ok then retry = ttl end
    return ok, avail, retry, s
  end,

  record = function(key, limit, window, cost, s)
    local after = s
    if s <= 0 then
      redis.call('SET', key, cost - s, 'PX', window / 1000)
      after = window
    else
      redis.call('INCRBY', key, cost)
    end
    return after
  end,

  reset = function(key, limit, window, s)
    if s > 0 then return s end
    return 0
  end,

  refund = function(key, limit, window, cost)
    local count = tonumber(redis.call('GET', key))
    if not count or count <= 0 then return end
    local left = count - cost
    if left < 0 then left = 0 end
    redis.call('SET', key, left, 'KEEPTTL')
  end,
}
