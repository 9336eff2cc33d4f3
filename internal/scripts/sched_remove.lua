-- sched_remove.lua: delete a schedule (jobs it already enqueued stay).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: schedule key.
-- Returns 1 removed, 0 no such schedule.
local key = ARGV[1]
redis.call('ZREM', K.schednext, key)
redis.call('HDEL', K.schedrun, key)
return redis.call('HDEL', K.sched, key)
