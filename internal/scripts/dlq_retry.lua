-- dlq_retry.lua: move dead jobs back to waiting with attempts and stalls reset.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: a job id ('' = the oldest dead jobs); ARGV[2]: most jobs to move.
-- Returns {moved, dead jobs left}. The last error is kept for reference; the
--   run state (attempts, stalls, old lease) is cleared.
local ids
if ARGV[1] ~= '' then
  ids = {}
  if redis.call('ZSCORE', K.dead, ARGV[1]) then ids[1] = ARGV[1] end
else
  ids = redis.call('ZRANGE', K.dead, 0, tonumber(ARGV[2]) - 1)
end
if #ids > 0 then
  call_chunked('ZREM', K.dead, ids)
  call_chunked('HDEL', K.run, ids)
  make_ready(ids, false)
end
return { #ids, redis.call('ZCARD', K.dead) }
