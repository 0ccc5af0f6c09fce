-- The state of a sliding-window key is one integer (stored int-encoded, like a counter):
--   (bucket index mod 4) * RL_SW_INDEX_UNIT + (count of that bucket) * RL_SW_COUNT_UNIT + (count of the bucket before)
-- Counts are at most the limit (<= 10^6 < 2^21) and the total stays below 2^44: exact in Lua numbers.
-- The key expires by the end of the bucket after the one that wrote it (ceil to 1 ms: at worst
-- during the next one), so the index mod 4 tells the current bucket (age 0), the previous one
-- (age 1), an expired-to-be one (age 2) and a future one after the clock went back (age 3) apart.
local RL_SW_INDEX_UNIT = 4398046511104 --- @export
local RL_SW_COUNT_UNIT = 2097152 --- @export

-- cur = hits in bucket idx, prev = hits in bucket idx - 1, from the key's state.
local function rl_sw_buckets(key, idx)
  local v = tonumber(redis.call('GET', key))
  if not v then return 0, 0 end
  local age = (idx - math.floor(v / RL_SW_INDEX_UNIT)) % 4
  if age > 1 then return 0, 0 end
  local counts = v % RL_SW_INDEX_UNIT
  local c = math.floor(counts / RL_SW_COUNT_UNIT)
  if age == 0 then return c, counts % RL_SW_COUNT_UNIT end
  return 0, c
end
