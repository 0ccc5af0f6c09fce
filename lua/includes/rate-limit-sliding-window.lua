--- @include "rate-limit-common"
--- @include "rate-limit-sliding-window-buckets"
-- sliding-window ('s'): two-bucket weighted counter in one integer (see rl_sw_buckets), written
-- with SET PX in one command.
-- Estimate = p * (window - elapsed) / window + c, computed scaled by `window` so that every
-- comparison is exact integer arithmetic. State between check and record: cur, prev (packed).
RL['s'] = {
  check = function(key, limit, window, cost)
    local now = rl_now()
    local idx = math.floor(now / window)
    local elapsed = now - idx * window
    local rest = window - elapsed
    local cur, prev = rl_sw_buckets(key, idx)
    local used = prev * rest + cur * window
    local avail = math.floor((limit * window - used) / window)
    if avail < 0 then avail = 0 end
    -- cur <= limit <= 1e6: the pair fits one exact number.
    local s = cur * 2097152 + prev
    if used + cost * window <= limit * window then return true, avail, 0, s end
    local retry
    if cur + cost <= limit then
      -- Later in this bucket, once prev's weight has dropped enough (prev > 0 here).
      retry = window - math.floor((limit - cur - cost) * window / prev) - elapsed
    else
      -- In the next bucket, where today's count becomes the weighted one (cur > 0 here).
      retry = rest + window - math.floor((limit - cost) * window / cur)
    end
    return false, avail, retry, s
  end,

  record = function(key, limit, window, cost, s)
    local now = rl_now()
    local idx = math.floor(now / window)
    local rest = window - (now - idx * window)
    local cur, prev = math.floor(s / 2097152), s % 2097152
    redis.call('SET', key, (idx % 4) * 4398046511104 + (cur + cost) * 2097152 + prev, 'PX', math.ceil((rest + window) / 1000))
    return rest + window
  end,

  reset = function(key, limit, window, s)
    local now = rl_now()
    local rest = window - (now - math.floor(now / window) * window)
    if s >= 2097152 then return rest + window end
    if s > 0 then return rest end
    return 0
  end,
}
