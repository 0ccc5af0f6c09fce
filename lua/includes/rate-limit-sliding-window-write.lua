-- Inlined (@inline) sliding-window write: `cost` more hits in bucket idx (cur, prev as read),
-- expiring by the end of the next bucket.
redis.call('SET', key, (idx % 4) * RL_SW_INDEX_UNIT + (cur + cost) * RL_SW_COUNT_UNIT + prev, 'PX', math.ceil((rest + window) / 1000))
