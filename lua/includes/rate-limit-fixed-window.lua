--- @include "rate-limit-common"
-- fixed-window ('f'): one counter that starts its window at the first admitted hit and expires
-- with it (PX). Denied hits are not counted. The check and the record are the statements inlined from
-- rate-limit-fixed-window-check and -record, shared with the single-rule path of fixed-window.lua.
RL['f'] = {
  check = function(key, limit, window, cost)
    --- @inline "rate-limit-fixed-window-check"
    return ok, avail, retry, s
  end,

  record = function(key, limit, window, cost, s)
    --- @inline "rate-limit-fixed-window-record"
    return after
  end,

  reset = function(key, limit, window, s)
    if s > 0 then return s end
    return 0
  end,
}
