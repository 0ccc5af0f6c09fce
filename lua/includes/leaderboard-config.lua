-- Board settings: a per-call value (ARGV, '' = not given) wins over the board's stored
-- configuration (a hash written by LeaderboardService.configure), which wins over the default.
local function board_setting(config_key, field, given, default)
  if given ~= nil and given ~= '' then return given end
  local stored = redis.call('HGET', config_key, field)
  if stored then return stored end
  return default
end

-- The board's order: 'desc' (higher is better) or 'asc' (lower is better).
local function board_order(config_key, given)
  local order = board_setting(config_key, 'order', given, 'desc')
  if order ~= 'desc' and order ~= 'asc' then error('invalid board order: ' .. tostring(order)) end
  return order
end
