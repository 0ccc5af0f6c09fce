-- Inlined (@inline) fixed-window record of `cost` units on `key` with the check's state `s`;
-- sets after, the µs until the quota is fully restored.
local after = s
if s <= 0 then
  redis.call('SET', key, cost - s, 'PX', window / 1000)
  after = window
else
  redis.call('INCRBY', key, cost)
end
