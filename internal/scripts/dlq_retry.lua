-- dlq_retry.lua: move dead jobs, or failed jobs awaiting their retry, back
-- to waiting now (DeadLetterQueue.Retry/RetryAll, Queue.Retry/RetryAll).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: a job id ('' = the oldest jobs of the set); ARGV[2]: most jobs
--   to move; ARGV[3]: 'dead' or 'failed'.
-- Returns {moved, jobs left in the set}.
-- Dead jobs start afresh: the run state (attempts, stalls, old lease) is
-- cleared; their last error is kept for reference. Failed jobs keep their
-- attempts: they only skip the rest of their backoff.
local set = K.dead
if ARGV[3] == 'failed' then set = K.failed end
local ids
if ARGV[1] ~= '' then
  ids = {}
  if redis.call('ZSCORE', set, ARGV[1]) then ids[1] = ARGV[1] end
else
  ids = redis.call('ZRANGE', set, 0, tonumber(ARGV[2]) - 1)
end
if #ids > 0 then
  call_chunked('ZREM', set, ids)
  if set == K.dead then call_chunked('HDEL', K.run, ids) end
  make_ready(ids, false)
  emit('retrying', ids)
end
return { #ids, redis.call('ZCARD', set) }
