-- Manual bans (`forRoot({ rateLimit: { bans: true } })`, RateLimiterService.block): a consume or peek
-- then carries its identifier's ban key as its last key: KEYS[2] in the compact form (one rule, see
-- the scripts' headers), KEYS[#KEYS] in the full form, whose op is then upper case ('C', 'P', 'W'). A live
-- ban denies before any rule is read:
--   { 0, 0 (no rule: a ban), 0, ms left, ms left, the ban's reason ('' for none) }
-- rl_ban is true when the call carries a ban key (the driver then leaves it out of the rules' keys).
local rl_ban = false
if #ARGV < 6 then
  rl_ban = #KEYS == 2
else
  local first = string.byte(ARGV[2])
  rl_ban = first >= 65 and first <= 90
end
if rl_ban then
  local ban = KEYS[#KEYS]
  local left = redis.call('PTTL', ban)
  if left > 0 then return { 0, 0, 0, left, left, redis.call('GET', ban) } end
end
