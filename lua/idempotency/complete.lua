#!lua
--[[
  Ends a claimed run with its result, in the same step that ends the claim: only while the record is
  still running under the caller's token (a claim whose lease ran out, then claimed by another run,
  is not the caller's to complete). The record then keeps the result for ARGV[3] ms, and the
  waiters counted in w are notified.

  KEYS[1] record key (see claim.lua)
  ARGV[1] token of the claim
  ARGV[2] the result to store (what claim.lua returns to retries)
  ARGV[3] how long the result is kept, in ms (integer > 0)
  ARGV[4] pub/sub channel of the key's run ends
  Returns 1 when the result was stored, 0 when the claim was no longer the caller's
]]
if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then
  return 0
end
local waiters = tonumber(redis.call('HGET', KEYS[1], 'w') or '0') or 0
redis.call('HSET', KEYS[1], 's', 'd', 'v', ARGV[2])
redis.call('HDEL', KEYS[1], 't', 'w')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if waiters > 0 then
  redis.call('PUBLISH', ARGV[4], 'done')
end
return 1
