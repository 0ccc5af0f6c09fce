--- @include "rate-limit-common"
--- @include "rate-limit-sliding-window-buckets"
-- sliding-window ('s'): two-bucket weighted counter in one integer (see rl_sw_buckets), written
-- with SET PX in one command. The check and the write are the statements inlined from
-- rate-limit-sliding-window-check and -write, shared with the single-rule path of sliding-window.lua.
-- State between check and record: cur and prev, packed as cur * RL_SW_COUNT_UNIT + prev.
RL['s'] = {
  check = function(key, limit, window, cost)
    local now = rl_now()
    --- @inline "rate-limit-sliding-window-check"
    -- cur <= limit <= 1e6: the pair fits one exact number.
    local s = cur * RL_SW_COUNT_UNIT + prev
    if ok then return true, avail, 0, s end
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
    local cur, prev = math.floor(s / RL_SW_COUNT_UNIT), s % RL_SW_COUNT_UNIT
    --- @inline "rate-limit-sliding-window-write"
    return rest + window
  end,

  reset = function(key, limit, window, s)
    local now = rl_now()
    local rest = window - (now - math.floor(now / window) * window)
    if s >= RL_SW_COUNT_UNIT then return rest + window end
    if s > 0 then return rest end
    return 0
  end,

  -- From the current bucket first; what it lacks comes off the previous one (whose hits count only by
  -- their weight: giving back a previous-bucket hit frees less than a whole unit of the estimate).
  refund = function(key, limit, window, cost)
    local now = rl_now()
    local idx = math.floor(now / window)
    local rest = window - (now - idx * window)
    local cur, prev = rl_sw_buckets(key, idx)
    if cur + prev == 0 then return end
    local back = cost
    if back > cur then back = cur end
    cur, cost = cur - back, cost - back
    prev = prev - cost
    if prev < 0 then prev = 0 end
    cost = 0 -- the write below adds `cost` to the current bucket: nothing here
    --- @inline "rate-limit-sliding-window-write"
  end,
}
