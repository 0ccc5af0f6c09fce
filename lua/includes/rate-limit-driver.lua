--- @include "rate-limit-common"
--- @include "rate-limit-reply"
-- Checks every rule, then records the hit in all of them or in none (all-or-nothing), and returns
-- the result of the tightest rule: when denied, the denying rule that frees last; when admitted,
-- the rule with the fewest units left. One rule (the common case) takes a direct path.
-- The including script defines RL_CODE, the algorithm of the compact ARGV form
-- { deadline, limit, window [, cost] }. A = ARGV without the deadline (checked by includes/rate-limit-deadline).
local A
if #ARGV < 6 then
  A = { 'c', ARGV[4] or '1', RL_CODE, ARGV[2], ARGV[3] }
else
  A = { select(2, unpack(ARGV)) }
end
local consume = A[1] == 'c'
local cost = tonumber(A[2])
local n = #KEYS
for i = 1, n do
  if not RL[A[3 * i]] then
    return redis.error_reply('ERR nest-redis-lua: unknown rate-limit algorithm code ' .. tostring(A[3 * i]))
  end
end

if n == 1 then
  local a = RL[A[3]]
  local key, limit, window = KEYS[1], tonumber(A[4]), A[5] * 1000
  local ok, avail, retry, s = a.check(key, limit, window, cost)
  if ok and consume then
    -- The integer form of an admitted single-rule consume (see the scripts' headers).
    return (avail - cost) * RL_REMAINING_UNIT + math.ceil(a.record(key, limit, window, cost, s) / 1000)
  end
  return { ok and 1 or 0, 1, avail, math.ceil(a.reset(key, limit, window, s) / 1000), math.ceil(retry / 1000) }
end

local oks, avails, retries, states = {}, {}, {}, {}
local allowed = true
for i = 1, n do
  local a = 3 * i
  oks[i], avails[i], retries[i], states[i] = RL[A[a]].check(KEYS[i], tonumber(A[a + 1]), A[a + 2] * 1000, cost)
  if not oks[i] then allowed = false end
end
local pick, remaining, reset, retry = 0, 0, 0, 0
for i = 1, n do
  local a = 3 * i
  local algorithm, limit, window = RL[A[a]], tonumber(A[a + 1]), A[a + 2] * 1000
  local left, until_reset = avails[i], 0
  if allowed and consume then
    until_reset = algorithm.record(KEYS[i], limit, window, cost, states[i])
    left = left - cost
  elseif allowed or not oks[i] then
    until_reset = algorithm.reset(KEYS[i], limit, window, states[i])
  end
  local better
  if pick == 0 then
    better = true
  elseif allowed then
    better = left < remaining or (left == remaining and until_reset > reset)
  else
    better = (not oks[i]) and retries[i] > retry
  end
  if better and (allowed or not oks[i]) then
    pick, remaining, reset, retry = i, left, until_reset, retries[i]
  end
end
return { allowed and 1 or 0, pick, remaining, math.ceil(reset / 1000), math.ceil(retry / 1000) }
