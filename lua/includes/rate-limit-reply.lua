-- How a rate-limit script answers an admitted single-rule consume: one integer,
-- remaining * RL_REMAINING_UNIT + reset ms (exact: remaining <= 10^6 < 2^20, reset ms <= two 30-day
-- windows < 2^33). An integer reply costs less to build and to parse than a 5-element array.
-- The `@export` mark hands the value to the TypeScript side (lib/scripts/bundled-scripts.generated.ts).
local RL_REMAINING_UNIT = 8589934592 --- @export
