-- obliterate.lua: delete every key of a queue (Queue.Obliterate).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: 1 = force (even while jobs are active).
-- Returns the number of active jobs: with jobs active and no force, nothing
--   is deleted. UNLINK frees big keys off Redis' main thread, so the call
--   costs O(number of keys), not O(number of jobs).
local active = redis.call('ZCARD', K.active)
if active > 0 and ARGV[1] ~= '1' then return active end
redis.call('UNLINK', K.jobs, K.wait, K.prio, K.active, K.delayed, K.failed, K.completed, K.dead,
  K.marker, K.meta, K.pri, K.run, K.res, K.err, K.prog, K.sched, K.schednext, K.schedrun,
  K.uniq, K.uniqexp, K.stats, K.workers, K.workerinfo, K.logs, K.events)
return active
