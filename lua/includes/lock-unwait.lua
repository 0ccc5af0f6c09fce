-- Uncounts one waiter of a lock (the counter key of acquire.lua): DECR, deleting the key at 0 and
-- never creating it (a counter that expired stays gone instead of going negative).
local function lock_unwait(counter_key)
  local n = tonumber(redis.call('GET', counter_key) or '0') or 0
  if n <= 1 then
    redis.call('DEL', counter_key)
    return 0
  end
  return redis.call('DECR', counter_key)
end
