--[[
  Shared by the rate-limit scripts: the algorithm table and the clock.

  Every algorithm RL[code] is a table of three functions; window is in microseconds, now is Redis
  TIME in microseconds (rl_now(), read once per call and only by algorithms that need it), cost is
  the units this hit takes (1 <= cost <= limit, checked by the client):
    check(key, limit, window, cost) -> ok, avail, retry, s
      ok     true if `cost` units are available now
      avail  units available now, before this hit
      retry  microseconds until `cost` units are available (0 when ok)
      s      state handed back to record/reset (nothing is allocated for it)
    record(key, limit, window, cost, s) -> reset: records the hit; microseconds until the quota is
      fully restored afterwards
    reset(key, limit, window, s) -> microseconds until the quota is fully restored, recording nothing
  No tables or closures are created per call on the admitted path: the hot path is the commands.

  The identifier's index (KEYS[#KEYS], a set in the same hash tag) lists its rule keys so that a
  reset without rules finds them. It must outlive every key it lists: record() calls rl_index only
  when it creates a key or moves the key's deadline into a later slot (a stretch of the window),
  and gives the index that slot's end plus RL_INDEX_MARGIN_MS. Every other hit costs no command.
]]
local RL = {}
local rl_time
local RL_INDEX = KEYS[#KEYS]
-- Covers the skew between Redis TIME and the time base of PEXPIRE inside a script, and rounding.
local RL_INDEX_MARGIN_MS = 1000

-- Lists `key` in the index and keeps the index alive at least `ttl` ms (+ margin) from now.
local function rl_index(key, ttl)
  ttl = ttl + RL_INDEX_MARGIN_MS
  -- A new set has no TTL, so GT would not apply: NX gives it one.
  if redis.call('SADD', RL_INDEX, key) == 1 and redis.call('PEXPIRE', RL_INDEX, ttl, 'NX') == 1 then return end
  redis.call('PEXPIRE', RL_INDEX, ttl, 'GT')
end

-- Redis TIME in microseconds, read at most once per script call.
local function rl_now()
  if not rl_time then
    local t = redis.call('TIME')
    rl_time = t[1] * 1000000 + t[2]
  end
  return rl_time
end
