-- ARGV[1] of every rate-limit script: the caller's deadline, in ms on this server's clock (Redis
-- TIME; the client adds the offset it learnt between its clock and the servers', rounded up: see
-- lib/rate-limit/server-clock.ts). A call that runs after it (the server was frozen, or busy with a
-- long script, while the call waited in its socket) records nothing and returns RL_LATE: its caller
-- was already answered by its fail mode, and a refused request must not be counted.
-- The `@export` mark hands the value to the TypeScript side (lib/scripts/bundled-scripts.generated.ts).
local RL_LATE = -1 --- @export
-- Redis TIME, read once per call: the deadline check and the algorithms that need the time use it.
local rl_clock = redis.call('TIME')
if rl_clock[1] * 1000 + rl_clock[2] / 1000 > tonumber(ARGV[1]) then return RL_LATE end
