-- dlq_retry.lua: move dead jobs back to waiting with attempts and stalls reset.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: a job id ('' = the oldest dead jobs); ARGV[2]: most jobs to move.
-- Returns {moved, dead jobs left}. The last error is kept for reference; the
--   old lease is cleared.
local ids
if ARGV[1] ~= '' then
  ids = {}
  if redis.call('ZSCORE', K.dead, ARGV[1]) then ids[1] = ARGV[1] end
else
  ids = redis.call('ZRANGE', K.dead, 0, tonumber(ARGV[2]) - 1)
end
for _, id in ipairs(ids) do
  redis.call('ZREM', K.dead, id)
  redis.call('HDEL', K.att, id)
  redis.call('HDEL', K.stall, id)
  redis.call('HDEL', K.lease, id)
  redis.call('HDEL', K.fin, id)
  make_ready(id, false)
end
return { #ids, redis.call('ZCARD', K.dead) }
