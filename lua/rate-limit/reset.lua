--[[
  Forgets the hits of one identifier: under every rule it was limited by, or under the given rules.
  O(number of rule keys deleted).

  KEYS[1]  the identifier's index: the set of its rule keys (filled by the rate-limit scripts when
           they create a key; all in the identifier's hash tag, so in this slot)
  KEYS[2..]  optional: the rule keys to forget. None: every key the index lists, and the index.

  Returns the number of keys deleted (the index not counted).
]]
if #KEYS > 1 then
  local deleted = redis.call('DEL', unpack(KEYS, 2))
  redis.call('SREM', KEYS[1], unpack(KEYS, 2))
  return deleted
end
local listed = redis.call('SMEMBERS', KEYS[1])
local deleted = 0
for i = 1, #listed, 500 do
  deleted = deleted + redis.call('DEL', unpack(listed, i, math.min(i + 499, #listed)))
end
redis.call('DEL', KEYS[1])
return deleted
