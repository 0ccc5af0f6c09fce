-- Waiter counting of the lease scripts (lock and semaphore acquire, unwait: see their headers).
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

-- Counts a subscribed waiter whose attempt failed (mode '1': not counted yet; '2': counted; '0': a
-- plain attempt, not a waiter) and keeps the counter alive for `ttl` ms at least. A counted waiter
-- whose counter vanished (it outlived its TTL) counts itself again.
local function lock_count_waiter(counter_key, mode, ttl)
  if mode == '0' then return end
  if mode == '1' or redis.call('EXISTS', counter_key) == 0 then
    redis.call('INCR', counter_key)
  end
  if redis.call('PTTL', counter_key) < tonumber(ttl) then
    redis.call('PEXPIRE', counter_key, ttl)
  end
end

-- The release notice to publish on a resource's channel: the ticket of the fair queue's head (so
-- that exactly that waiter is woken, see lock/fair-acquire.lua), or 'released' when no one queues
-- (`queue_key` nil: a lease without a queue).
local function lock_notice(queue_key)
  if queue_key then
    local head = redis.call('ZRANGE', queue_key, 0, 0)[1]
    if head then
      return head
    end
  end
  return 'released'
end

-- A writer's attempt failed: counts it as a waiter (`waiters_key`) and as a waiting writer
-- (`writers_key`, which keeps new readers out), as lock_count_waiter does.
local function lock_count_writer(waiters_key, writers_key, mode, ttl)
  lock_count_waiter(waiters_key, mode, ttl)
  lock_count_waiter(writers_key, mode, ttl)
end

-- A counted writer (mode '2') took the lock: uncounts it from both counters.
local function lock_uncount_writer(waiters_key, writers_key, mode)
  if mode == '2' then
    lock_unwait(waiters_key)
    lock_unwait(writers_key)
  end
end
