--- @include "rate-limit-common"
--- @include "rate-limit-reply"
-- Checks every rule, then records the hit in all of them or in none (all-or-nothing), and returns
-- the result of the tightest rule: when denied, the denying rule that frees last; when admitted,
-- the rule with the fewest units left. One rule (the common case) takes a direct path.
-- The including script defines RL_CODE, the algorithm of the compact ARGV form
-- { deadline, limit, window [, cost] }. A = ARGV without the deadline (checked by includes/rate-limit-deadline).
--
-- Operations (A[1]): 'c' consume, 'p' peek (records nothing), 'w<ms>' consume waiting up to <ms>
-- (below) ('C', 'P', 'W<ms>' with a ban key: see includes/rate-limit-ban), 'r' refund (gives `cost` units back
-- to every rule, never below empty; replies 0), 'g' charge (takes `cost` more units in every rule
-- whatever it admits, at most what it has left: a rule is then used up, never overdrawn; replies 0).
--
-- Blocks: when the call carries them, KEYS has a second half (KEYS[n + i]: rule i's block key) and
-- A a block duration in ms per rule after the rule triplets (A[3n + 2 + i], '0' for none). A rule
-- with a live block key denies every consume and peek until the key expires (retry-after: its PTTL);
-- a consume that a rule with a block duration denies sets that rule's block key for the duration.
local A
if #ARGV < 6 then
  A = { 'c', ARGV[4] or '1', RL_CODE, ARGV[2], ARGV[3] }
else
  A = { select(2, unpack(ARGV)) }
end
local op = A[1]
local cost = tonumber(A[2])
local n = #KEYS
-- The ban key (includes/rate-limit-ban, already checked) is not a rule's.
if rl_ban then
  n = n - 1
  op = string.lower(op)
end
local blocked = false
if #A ~= 3 * n + 2 then
  n = n / 2
  blocked = true
end
for i = 1, n do
  if not RL[A[3 * i]] then
    return redis.error_reply('ERR nest-redis-lua: unknown rate-limit algorithm code ' .. tostring(A[3 * i]))
  end
end

if op == 'r' or op == 'g' then
  for i = 1, n do
    local a = 3 * i
    local algorithm, key, limit, window = RL[A[a]], KEYS[i], tonumber(A[a + 1]), A[a + 2] * 1000
    if op == 'r' then
      algorithm.refund(key, limit, window, cost)
    else
      local _, avail, _, s = algorithm.check(key, limit, window, 1)
      if avail > cost then avail = cost end
      if avail > 0 then algorithm.record(key, limit, window, avail, s) end
    end
  end
  return 0
end

-- A live block denies before anything is read or written (µs left, or nil).
local function rl_block_left(i)
  local left = redis.call('PTTL', KEYS[n + i])
  if left > 0 then return left * 1000 end
  return nil
end

-- Waiting ('w<ms>', sliding-log and token-bucket rules): when the hit does not fit now, it is
-- recorded at the earliest time it fits in every rule, after every hit already recorded there (so
-- waiters across instances are admitted in arrival order, at the rate), if that is at most <ms>
-- away: the reply is then { 1, rule, 0, reset ms (from the admission time), 0, delay ms } and the
-- caller sleeps the delay. A live block is not waited out. Otherwise the call is a consume ('c'),
-- which admits a hit that fits now or denies (retry-after at least the time a wait would need).
local wait_retry = 0
if string.byte(op) == 119 then
  local max_wait = tonumber(string.sub(op, 2)) * 1000
  op = 'c'
  local now = rl_now()
  local at, times, waitable = now, {}, true
  for i = 1, n do
    local a = 3 * i
    local algorithm = RL[A[a]]
    if not algorithm.at then
      return redis.error_reply('ERR nest-redis-lua: waiting needs sliding-log or token-bucket rules, got code ' .. A[a])
    end
    if blocked and A[3 * n + 2 + i] ~= '0' and rl_block_left(i) then
      waitable = false
      break
    end
    times[i] = algorithm.at(KEYS[i], tonumber(A[a + 1]), A[a + 2] * 1000, cost)
    if times[i] > at then at = times[i] end
  end
  if waitable and at > now then
    if at - now <= max_wait then
      -- The tightest rule: the first whose own time is the admission time.
      local pick, reset = 0, 0
      for i = 1, n do
        local a = 3 * i
        local after = RL[A[a]].schedule(KEYS[i], tonumber(A[a + 1]), A[a + 2] * 1000, cost, at)
        if pick == 0 and times[i] == at then pick, reset = i, after end
      end
      local delay = at - now
      return { 1, pick, 0, math.ceil((reset - delay) / 1000), 0, math.ceil(delay / 1000) }
    end
    wait_retry = at - now
  end
end

local consume = op == 'c'

if n == 1 and not blocked then
  local a = RL[A[3]]
  local key, limit, window = KEYS[1], tonumber(A[4]), A[5] * 1000
  local ok, avail, retry, s = a.check(key, limit, window, cost)
  if ok and consume then
    -- The integer form of an admitted single-rule consume (see the scripts' headers).
    return (avail - cost) * RL_REMAINING_UNIT + math.ceil(a.record(key, limit, window, cost, s) / 1000)
  end
  if retry < wait_retry then retry = wait_retry end
  return { ok and 1 or 0, 1, avail, math.ceil(a.reset(key, limit, window, s) / 1000), math.ceil(retry / 1000) }
end

local oks, avails, retries, states = {}, {}, {}, {}
local allowed = true
for i = 1, n do
  local a = 3 * i
  local left = blocked and A[3 * n + 2 + i] ~= '0' and rl_block_left(i)
  if left then
    oks[i], avails[i], retries[i], states[i] = false, 0, left, nil
  else
    oks[i], avails[i], retries[i], states[i] = RL[A[a]].check(KEYS[i], tonumber(A[a + 1]), A[a + 2] * 1000, cost)
    if blocked and not oks[i] and consume then
      -- Denied by this rule now: blocked for its duration from this denial, if it has one.
      local block = tonumber(A[3 * n + 2 + i])
      if block > 0 then
        redis.call('SET', KEYS[n + i], 1, 'PX', block)
        if block * 1000 > retries[i] then retries[i] = block * 1000 end
        avails[i] = 0
      end
    end
  end
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
  elseif states[i] == nil then
    -- Blocked: its quota is whole again when the block ends, at the earliest.
    until_reset = retries[i]
  elseif allowed or not oks[i] then
    until_reset = algorithm.reset(KEYS[i], limit, window, states[i])
    -- A block set by this denial may outlast the window: the quota is whole only after both.
    if until_reset < retries[i] then until_reset = retries[i] end
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
if not allowed and retry < wait_retry then retry = wait_retry end
return { allowed and 1 or 0, pick, remaining, math.ceil(reset / 1000), math.ceil(retry / 1000) }
