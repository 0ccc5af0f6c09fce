--- @include "rate-limit-common"
-- Checks every rule, then records the hit in all of them or in none (all-or-nothing), and returns
-- the result of the tightest rule: when denied, the denying rule that frees last; when admitted,
-- the rule with the fewest units left.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local consume = ARGV[1] == 'c'
local cost = tonumber(ARGV[2])
local rules = {}
local allowed = true
for i = 1, #KEYS do
  local a = 3 + (i - 1) * 3
  local algorithm = RL[ARGV[a]]
  if not algorithm then
    return redis.error_reply('ERR nest-redis-lua: unknown rate-limit algorithm code ' .. tostring(ARGV[a]))
  end
  local ok, avail, retry, reset, record =
    algorithm(KEYS[i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]) * 1000, now, cost)
  rules[i] = { ok = ok, avail = avail, retry = retry, reset = reset, record = record }
  if not ok then allowed = false end
end
local pick, remaining, reset, retry = 0, 0, 0, 0
for i = 1, #KEYS do
  local r = rules[i]
  local left, until_reset = r.avail, r.reset
  if allowed and consume then
    until_reset = r.record()
    left = left - cost
  end
  local better
  if pick == 0 then
    better = true
  elseif allowed then
    better = left < remaining or (left == remaining and until_reset > reset)
  else
    better = (not r.ok) and r.retry > retry
  end
  if better and (allowed or not r.ok) then
    pick, remaining, reset, retry = i, left, until_reset, r.retry
  end
end
return { allowed and 1 or 0, pick, remaining, math.ceil(reset / 1000), math.ceil(retry / 1000) }
