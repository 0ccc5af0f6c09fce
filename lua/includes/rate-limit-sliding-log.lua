--- @include "rate-limit-common"
-- sliding-log ('l'): a sorted set of the hits of the last window. Member = score = the hit's time in
-- integer microseconds, made unique by bumping to (newest + 1) when the clock has not moved past the
-- newest entry; integer members keep the set in compact listpack encoding. Denied hits are not logged.
RL['l'] = function(key, limit, window, now, cost)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', rl_int(now - window))
  local count = redis.call('ZCARD', key)
  local avail = limit - count
  if avail < 0 then avail = 0 end
  local newest
  local reset = 0
  if count > 0 then
    newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    reset = newest + window - now
  end
  local ok = count + cost <= limit
  local retry = 0
  if not ok then
    -- The (count + cost - limit) oldest entries must expire; the last of them decides.
    local i = count + cost - limit - 1
    local entry = redis.call('ZRANGE', key, i, i, 'WITHSCORES')
    retry = window
    if entry[2] then retry = tonumber(entry[2]) + window - now end
  end
  local function record()
    local t = now
    if newest and t <= newest then t = newest + 1 end
    local args = {}
    for j = 0, cost - 1 do
      local s = rl_int(t + j)
      args[#args + 1] = s
      args[#args + 1] = s
    end
    redis.call('ZADD', key, unpack(args))
    local after = t + cost - 1 + window - now
    redis.call('PEXPIRE', key, math.ceil(after / 1000))
    return after
  end
  return ok, avail, retry, reset, record
end
