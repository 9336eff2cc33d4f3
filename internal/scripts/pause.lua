-- pause.lua: pause or resume a queue.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: 1 = pause, 0 = resume.
-- Returns 1. Paused queues keep their jobs waiting; workers fetch nothing
-- from them. Resuming sets the ready marker so idle workers wake at once.
if ARGV[1] == '1' then
  redis.call('HSET', K.meta, 'paused', '1')
else
  redis.call('HDEL', K.meta, 'paused')
  if redis.call('LLEN', K.wait) > 0 or redis.call('ZCARD', K.prio) > 0 then
    redis.call('ZADD', K.marker, 0, '0')
  end
end
return 1
