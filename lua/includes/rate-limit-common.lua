--[[
  Shared by the rate-limit scripts: the algorithm table and the clock.

  Every algorithm RL[code] is a table of four functions; window is in microseconds, now is Redis
  TIME in microseconds (rl_now(), read once per call: see includes/rate-limit-deadline), cost is
  the units this hit takes (1 <= cost <= limit, checked by the client):
    check(key, limit, window, cost) -> ok, avail, retry, s
      ok     true if `cost` units are available now
      avail  units available now, before this hit
      retry  microseconds until `cost` units are available (0 when ok)
      s      state handed back to record/reset (nothing is allocated for it)
    record(key, limit, window, cost, s) -> reset: records the hit; microseconds until the quota is
      fully restored afterwards
    reset(key, limit, window, s) -> microseconds until the quota is fully restored, recording nothing
    refund(key, limit, window, cost): gives back the `cost` most recent units (any cost >= 1), never
      below empty; the key keeps its expiry
  and, for the algorithms that can record a hit at a later time (sliding-log, token-bucket: waiting,
  see includes/rate-limit-driver):
    at(key, limit, window, cost) -> the earliest time (µs, >= now) at which the hit fits, after
      every hit recorded so far
    schedule(key, limit, window, cost, at) -> reset: records the hit at `at`; µs from now until the
      quota is fully restored afterwards
  No tables or closures are created per call on the admitted path: the hot path is the commands.
]]
local RL = {}
local rl_time

-- Redis TIME in microseconds: the one read of the call (rl_clock, includes/rate-limit-deadline).
local function rl_now()
  if not rl_time then rl_time = rl_clock[1] * 1000000 + rl_clock[2] end
  return rl_time
end
