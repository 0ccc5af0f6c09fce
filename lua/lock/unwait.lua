#!lua flags=allow-oom
--[[
  Uncounts a waiter that stops waiting without the lock (gave up after its wait, or was aborted):
  see the waiter count in acquire.lua. Best effort: a waiter that never calls it is forgotten when
  the counter's TTL runs out.

  KEYS[1] waiter counter key of the resource
  Returns the number of waiters still counted
]]
--- @include "../includes/lock-unwait"
return lock_unwait(KEYS[1])
