-- Inlined (@inline) token-bucket write: the new theoretical arrival time, `ahead` µs after `now`
-- (a number argument reaches Redis as %.17g: exact for integers below 2^53), expiring when it passes.
redis.call('SET', key, now + ahead, 'PX', math.ceil(ahead / 1000))
