-- requeue.lua: move dead jobs, failed jobs awaiting their retry, or delayed
-- jobs to waiting now (DeadLetterQueue.Retry/RetryAll, Queue.Retry/RetryAll,
-- Queue.PromoteAll).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: a job id ('' = the first jobs of the set: oldest dead, soonest
--   due); ARGV[2]: most jobs to move; ARGV[3]: 'dead', 'failed' or 'delayed'.
-- Returns {moved, jobs left in the set}.
-- Dead jobs start afresh: the run state (attempts, stalls, old lease) is
-- cleared; their last error is kept for reference. Failed jobs keep their
-- attempts: they only skip the rest of their backoff. Delayed jobs are
-- promoted.
local set = K.dead
if ARGV[3] == 'failed' then set = K.failed elseif ARGV[3] == 'delayed' then set = K.delayed end
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
  emit(set == K.delayed and 'waiting' or 'retrying', ids)
end
return { #ids, redis.call('ZCARD', set) }
