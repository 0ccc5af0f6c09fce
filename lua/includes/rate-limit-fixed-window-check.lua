-- Inlined (@inline) fixed-window check of `cost` units against `limit` on `key` (window in µs);
-- sets ok, avail (units available now), retry (µs until `cost` units are) and s, the state record
-- needs: the open window's µs left, or 0 - count when a window must be opened (none is, or the key
-- lost its expiry). Needs no clock: the key's TTL is the window's end.
local count = tonumber(redis.call('GET', key)) or 0
local s, ttl = -count, window
if count > 0 then
  local pttl = redis.call('PTTL', key)
  if pttl > 0 then
    ttl = pttl * 1000
    s = ttl
  end
end
local avail = limit - count
if avail < 0 then avail = 0 end
local ok = count + cost <= limit
local retry = 0
if not ok then retry = ttl end
