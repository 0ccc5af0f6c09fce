--[[
  Releases a lock only if it is still held with the caller's token, then wakes the waiters.

  KEYS[1] lock key
  ARGV[1] token of the holder releasing it
  ARGV[2] pub/sub channel of the resource's release notices
  Returns 1 when the lock was released (and a notice published),
          0 when it is not held with this token (expired, released, or held by someone else)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], 'released')
return 1
