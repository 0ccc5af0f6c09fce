#!lua
--[[
  Claims an idempotency key for one run, or says what became of an earlier one, in one step (no
  check-then-set race: of any number of concurrent first requests exactly one gets 'claimed').

  The record is a hash: s = state ('r' running, 'd' done), t = the running claim's token, f = the
  request's fingerprint, v = the stored result (done), w = waiters to notify when the run ends.
  While running it lives for the claim's lease (renewed by the runner, renew.lua), so the claim of a
  runner that died expires after at most one lease; once done, for the result's TTL (complete.lua).

  KEYS[1] record key
  ARGV[1] token of this claim (random, chosen by the client)
  ARGV[2] fingerprint of the request (what must match for a replay)
  ARGV[3] lease in ms (integer > 0)
  ARGV[4] '1': a subscribed waiter not counted yet (counted in w when the run is still going), else '0'
  Returns {'claimed'} when this call claimed the key (a new record, running, lease ARGV[3]),
          {'mismatch'} when the key was used with another fingerprint (running or done),
          {'done', result} when a run with this fingerprint completed: the stored result,
          {'running', ms until its lease runs out} when a run with this fingerprint is in progress
]]
local record = redis.call('HMGET', KEYS[1], 's', 'f', 'v')
if not record[1] then
  redis.call('HSET', KEYS[1], 's', 'r', 't', ARGV[1], 'f', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'claimed'}
end
if record[2] ~= ARGV[2] then
  return {'mismatch'}
end
if record[1] == 'd' then
  return {'done', record[3]}
end
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[1], 'w', 1)
end
return {'running', redis.call('PTTL', KEYS[1])}
