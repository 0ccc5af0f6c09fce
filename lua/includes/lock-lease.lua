-- Shared steps of the lease scripts (lock, read lock and semaphore acquire, release, extend).

-- Redis TIME (the reply of redis.call('TIME')) in whole ms.
local function lock_now_ms(now)
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- Hands out the resource's next fencing token (the rule in lock/acquire.lua's header): max(last
-- fence + 1, TIME in microseconds), kept in `fence_key` for `fence_ttl` ms. Returns it as a decimal
-- string ('%.0f': tostring() would print 16-digit numbers in exponent form and lose digits).
local function lock_next_fence(fence_key, now, fence_ttl)
  local fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('GET', fence_key) or '0') or 0
  if last >= fence then
    fence = last + 1
  end
  local text = string.format('%.0f', fence)
  redis.call('SET', fence_key, text, 'PX', fence_ttl)
  return text
end

-- Holder sets (semaphore permits, read locks): a sorted set, member = the holder's token, score =
-- when its lease expires (TIME in ms). Drops the expired holders; returns how many remain.
local function lock_live_holders(key, now_ms)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
  return redis.call('ZCARD', key)
end

-- Ms until the first holder of a holder set expires (-2 when it has none).
local function lock_first_expiry(key, now_ms)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if not first[2] then
    return -2
  end
  return tonumber(first[2]) - now_ms
end

-- Adds or renews (`flag` 'XX': only if present) a holder until now_ms + ttl; the set lives as long
-- as its latest holder.
local function lock_hold(key, token, now_ms, ttl, flag)
  if flag then
    redis.call('ZADD', key, flag, now_ms + tonumber(ttl), token)
  else
    redis.call('ZADD', key, now_ms + tonumber(ttl), token)
  end
  if redis.call('PTTL', key) < tonumber(ttl) then
    redis.call('PEXPIRE', key, ttl)
  end
end
