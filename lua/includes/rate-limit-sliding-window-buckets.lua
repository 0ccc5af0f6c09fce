-- The two buckets of a sliding-window key ("w c p": bucket index, its count, the previous bucket's
-- count) seen from bucket `idx`: cur = hits in bucket idx, prev = hits in bucket idx - 1.
local function rl_sw_buckets(key, idx)
  local v = redis.call('GET', key)
  if not v then return 0, 0 end
  local w, c, p = string.match(v, '^(%d+) (%d+) (%d+)$')
  w = tonumber(w)
  if w == idx then return tonumber(c), tonumber(p) end
  if w == idx - 1 then return 0, tonumber(c) end
  return 0, 0
end
