--- @include "rate-limit-common"
-- sliding-window ('s'): two-bucket weighted counter in one hash {w = bucket index, c = count in
-- bucket w, p = count in bucket w - 1}. Estimate = p * (window - elapsed) / window + c, computed
-- scaled by `window` so that every comparison is exact integer arithmetic.
RL['s'] = function(key, limit, window, now, cost)
  local idx = math.floor(now / window)
  local elapsed = now - idx * window
  local rest = window - elapsed
  local v = redis.call('HMGET', key, 'w', 'c', 'p')
  local w = tonumber(v[1])
  local cur, prev = 0, 0
  if w == idx then
    cur = tonumber(v[2]) or 0
    prev = tonumber(v[3]) or 0
  elseif w == idx - 1 then
    prev = tonumber(v[2]) or 0
  end
  local used = prev * rest + cur * window
  local avail = math.floor((limit * window - used) / window)
  if avail < 0 then avail = 0 end
  local ok = used + cost * window <= limit * window
  local retry = 0
  if not ok then
    if cur + cost <= limit then
      -- Later in this bucket, once prev's weight has dropped enough (prev > 0 here).
      retry = window - math.floor((limit - cur - cost) * window / prev) - elapsed
    else
      -- In the next bucket, where today's count becomes the weighted one (cur > 0 here).
      retry = rest + window - math.floor((limit - cost) * window / cur)
    end
  end
  local reset = 0
  if cur > 0 then reset = rest + window elseif prev > 0 then reset = rest end
  local function record()
    redis.call('HSET', key, 'w', rl_int(idx), 'c', cur + cost, 'p', prev)
    redis.call('PEXPIRE', key, math.ceil((rest + window) / 1000))
    return rest + window
  end
  return ok, avail, retry, reset, record
end
