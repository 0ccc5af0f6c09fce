-- Inlined (@inline) where a sliding-log member is made: turns `m`, a hit's time mod `span`, into
-- its member for a rule of `limit` (see rate-limit-sliding-log.lua): the integer itself while the set
-- is a listpack (limit <= 128) and it fits 32 bits, otherwise 5 raw little-endian bytes (6 for spans
-- over 2^40 µs, windows over 12 days). Inlined, not a function: the single-rule path runs before any
-- function is defined (defining one creates a closure on every call).
if limit > 128 or span > 2147483647 then
  local b1 = m % 256; m = (m - b1) / 256
  local b2 = m % 256; m = (m - b2) / 256
  local b3 = m % 256; m = (m - b3) / 256
  local b4 = m % 256; m = (m - b4) / 256
  local b5 = m % 256
  if span <= 1099511627776 then
    m = string.char(b1, b2, b3, b4, b5)
  else
    m = string.char(b1, b2, b3, b4, b5, ((m - b5) / 256) % 256)
  end
end
