-- clean.lua: delete the oldest jobs of a terminal set (dead or completed).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: 'dead' or 'completed'; ARGV[2]: most jobs to delete;
--   ARGV[3]: only jobs finished at or before this time in ms (-1 = any).
-- Returns {deleted, members left in the set}.
local set = K.dead
if ARGV[1] == 'completed' then set = K.completed end
local limit = tonumber(ARGV[2])
local ids
if tonumber(ARGV[3]) < 0 then
  ids = redis.call('ZRANGE', set, 0, limit - 1)
else
  ids = redis.call('ZRANGEBYSCORE', set, '-inf', ARGV[3], 'LIMIT', 0, limit)
end
if #ids > 0 then
  delete_jobs(ids)
  call_chunked('ZREM', set, ids)
  emit('removed', ids)
end
return { #ids, redis.call('ZCARD', set) }
