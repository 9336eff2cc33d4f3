-- counts.lua: jobs per state, consistently at one instant. Read-only.
-- KEYS: the queue's keys (lib.lua).
-- ARGV: none.
-- Returns {waiting, active, delayed, failed, completed, dead, paused (0|1)}.
return {
  redis.call('LLEN', K.wait) + redis.call('ZCARD', K.prio),
  redis.call('ZCARD', K.active), redis.call('ZCARD', K.delayed),
  redis.call('ZCARD', K.failed), redis.call('ZCARD', K.completed),
  redis.call('ZCARD', K.dead), redis.call('HEXISTS', K.meta, 'paused'),
}
