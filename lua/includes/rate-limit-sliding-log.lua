--- @include "rate-limit-common"
-- sliding-log ('l'): a sorted set of the hits of the last window; score = the hit's Redis time in
-- integer microseconds. Denied hits are not logged.
--
-- Members are t mod span (span = window + limit, in µs) instead of the 16-digit time. Every live
-- entry has a score in (now - window, now + cost), a range shorter than the span, so the residues of
-- live entries are distinct and the new ones collide with none of them. The encoding is fixed per
-- rule (it never changes within a key):
--   limit <= 128 (a listpack set) and span < 2^31: the integer itself (a 32-bit listpack integer);
--   otherwise raw little-endian bytes, 5 of them (span <= 2^40 µs, windows up to 12 days), else 6:
--   7-8 bytes in a listpack instead of a 10-byte 64-bit integer, an 8-byte allocation instead of 32
--   in a skiplist.
-- When the clock has gone back, or hits of several units overlap, ZADD NX reports a collision: the
-- missing units are then logged after the newest entry with the full score as member (>= 1e15: 16
-- digits, so it cannot equal a short member), which is unique too. The count is always exact: one
-- member per admitted unit.
local function rl_log_member(m, limit, span)
  --- @inline "rate-limit-sliding-log-member"
  return m
end

-- ZADD NX of `count` entries scored first, first + 1, ...: short members (t mod m) when m is given,
-- otherwise the full score. In chunks of 1000, as unpack takes at most a few thousand values.
local function rl_log_add(key, first, count, m, limit)
  local added = 0
  for from = 0, count - 1, 1000 do
    local args, n = { 'NX' }, 1
    for j = from, math.min(count, from + 1000) - 1 do
      local score = first + j
      args[n + 1] = score
      if m then args[n + 2] = rl_log_member(score % m, limit, m) else args[n + 2] = string.format('%.0f', score) end
      n = n + 2
    end
    added = added + redis.call('ZADD', key, unpack(args))
  end
  return added
end

RL['l'] = {
  check = function(key, limit, window, cost)
    local now = rl_now()
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    local avail = limit - count
    if avail < 0 then avail = 0 end
    if count + cost <= limit then return true, avail, 0, count end
    -- The (count + cost - limit) oldest entries must expire; the last of them decides.
    local i = count + cost - limit - 1
    local entry = redis.call('ZRANGE', key, i, i, 'WITHSCORES')
    local retry = window
    if entry[2] then retry = tonumber(entry[2]) + window - now end
    return false, avail, retry, count
  end,

  record = function(key, limit, window, cost, count)
    local now = rl_now()
    local m = window + limit
    local last = now + cost - 1
    local added
    if cost == 1 then
      added = redis.call('ZADD', key, 'NX', now, rl_log_member(now % m, limit, m))
    else
      added = rl_log_add(key, now, cost, m, limit)
    end
    if added < cost then
      -- Collisions (rare): log the missing units after the newest entry, with full-score members.
      local newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
      rl_log_add(key, newest + 1, cost - added)
      if newest + cost - added > last then last = newest + cost - added end
    end
    local after = last + window - now
    if count == 0 then
      -- A new key (an empty set does not exist), without a TTL yet.
      redis.call('PEXPIRE', key, math.ceil(after / 1000))
    else
      -- GT: never shorten the life of entries logged further ahead (clock gone back).
      redis.call('PEXPIRE', key, math.ceil(after / 1000), 'GT')
    end
    return after
  end,

  reset = function(key, limit, window, count)
    if count == 0 then return 0 end
    local newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    return newest + window - rl_now()
  end,

  -- The newest entries: the highest scores, whatever their members' encoding.
  refund = function(key, limit, window, cost)
    redis.call('ZPOPMAX', key, cost)
  end,

  -- Waiting (includes/rate-limit-driver, op 'w'): the earliest time >= now at which `cost` more
  -- units fit, after every entry already logged (first come, first served: waiters are logged at
  -- their admission time, in the future). At any later time they fit too (fewer entries in the window).
  at = function(key, limit, window, cost)
    local now = rl_now()
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    if count + cost <= limit then return now end
    local i = count + cost - limit - 1
    local t = tonumber(redis.call('ZRANGE', key, i, i, 'WITHSCORES')[2]) + window
    local newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    if newest >= t then t = newest + 1 end
    return t
  end,

  -- Logs `cost` units at `at` (> now) with full-score members, which cannot meet a short member
  -- (whose live scores lie in (now - window, now + cost)), after every entry so that they meet no
  -- other full score either: when another rule set `at` and this one has entries further ahead
  -- (other waiters'), after those (counted longer, never less). Returns the microseconds from now
  -- until the quota is fully restored.
  schedule = function(key, limit, window, cost, at)
    local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
    if newest and tonumber(newest) >= at then at = tonumber(newest) + 1 end
    rl_log_add(key, at, cost)
    local after = at + cost - 1 + window - rl_now()
    if newest then
      redis.call('PEXPIRE', key, math.ceil(after / 1000), 'GT')
    else
      -- A new key, without a TTL yet (GT would leave it without one).
      redis.call('PEXPIRE', key, math.ceil(after / 1000))
    end
    return after
  end,
}
