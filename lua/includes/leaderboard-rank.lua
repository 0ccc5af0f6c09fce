-- Standard competition ranking (1, 2, 2, 4): 1 + the number of strictly better scores.
-- `score` is a score string as Redis returns it; '(' makes the range bound exclusive.
local function competition_rank(scores_key, order, score)
  if order == 'desc' then
    return 1 + redis.call('ZCOUNT', scores_key, '(' .. score, '+inf')
  end
  return 1 + redis.call('ZCOUNT', scores_key, '-inf', '(' .. score)
end

-- Entries at positions start..stop (0-based, best first) as a flat array
-- {member, score, rank, ...}. Only the first entry needs a ZCOUNT: a later entry shares the rank of
-- the one before it when their scores are equal, otherwise its rank is its 1-based position.
local function ranked_range(scores_key, order, start, stop)
  local rows
  if order == 'desc' then
    rows = redis.call('ZREVRANGE', scores_key, start, stop, 'WITHSCORES')
  else
    rows = redis.call('ZRANGE', scores_key, start, stop, 'WITHSCORES')
  end
  local out = {}
  local previous_score, previous_rank
  for i = 1, #rows, 2 do
    local position = start + (i - 1) / 2
    local score = rows[i + 1]
    local rank
    if previous_score == nil then
      rank = competition_rank(scores_key, order, score)
    elseif tonumber(score) == tonumber(previous_score) then
      rank = previous_rank
    else
      rank = position + 1
    end
    out[#out + 1] = rows[i]
    out[#out + 1] = score
    out[#out + 1] = rank
    previous_score, previous_rank = score, rank
  end
  return out
end

-- 0-based position of `member`, best first, or nil.
local function board_position(scores_key, order, member)
  if order == 'desc' then return redis.call('ZREVRANK', scores_key, member) end
  return redis.call('ZRANK', scores_key, member)
end
