-- sched_set.lua: create, update, pause or resume a schedule.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: schedule key; ARGV[2]: definition (JSON); ARGV[3]: next tick ms
--   (-1 = not scheduled: paused or no further tick); ARGV[4]: the definition
--   the caller read before changing it ('' = no check).
-- Returns 1 created, 0 updated, -1 refused: the stored definition is not
--   ARGV[4] any more (a concurrent change; read again and retry).
-- A new tick time lowers the due-time marker so idle workers fire it on time.
local key = ARGV[1]
local old = redis.call('HGET', K.sched, key)
if ARGV[4] ~= '' and old ~= ARGV[4] then return -1 end
redis.call('HSET', K.sched, key, ARGV[2])
local nxt = tonumber(ARGV[3])
if nxt >= 0 then
  redis.call('ZADD', K.schednext, nxt, key)
  redis.call('ZADD', K.marker, 'LT', nxt, 'd')
else
  redis.call('ZREM', K.schednext, key)
end
if old then return 0 end
return 1
