-- Inlined (@inline) sliding-window check of `cost` units against `limit` on `key` at `now`
-- (window and now in µs). Estimate = prev * (window - elapsed) / window + cur, computed scaled by
-- `window` so that every comparison is exact integer arithmetic. Sets idx (the current bucket),
-- elapsed and rest (µs into it and left of it), cur and prev, used (the scaled estimate), avail and ok.
local idx = math.floor(now / window)
local elapsed = now - idx * window
local rest = window - elapsed
local cur, prev = rl_sw_buckets(key, idx)
local used = prev * rest + cur * window
local avail = math.floor((limit * window - used) / window)
if avail < 0 then avail = 0 end
local ok = used + cost * window <= limit * window
