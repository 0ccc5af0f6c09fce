--[[
  Counts a view of a page and returns the page's total and its rank among the site's pages.
  KEYS[1] hash of view counts by page    (same hash tag as KEYS[2])
  KEYS[2] sorted set of pages by views
  ARGV[1] page id
  Returns {views (integer), rank (1 = most viewed)}
]]
local views = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('ZADD', KEYS[2], views, ARGV[1])
return {views, redis.call('ZREVRANK', KEYS[2], ARGV[1]) + 1}
