-- promote.lua: the maintenance pass of one queue: move due delayed and
-- failed (retry) jobs to waiting, forget expired unique keys, register the
-- calling worker, and report what else needs doing.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: most jobs to move per set;
--   ARGV[3]: a job id to promote now whatever its due time ('' = only due jobs);
--   ARGV[4]: the calling worker's id ('' = none), ARGV[5]: its info (JSON;
--   '' = unchanged since its last call), ARGV[6]: registry TTL ms: the
--   worker is (re)registered in the queue's worker registry until now + TTL,
--   and expired entries are dropped.
-- Returns {moved, next due (-1 = none), now, next schedule tick (-1 = none),
--   earliest lease deadline (-1 = no job active), ready jobs (0 when paused),
--   1 if the worker was not registered (its info must be sent again),
--   schedules stored in the queue (-1 with an id)}.
--   With an id: moved is 1 if the job was delayed or failed and is now
--   waiting, else 0, and only the first three values are meaningful.
-- Atomic: when several workers run it at once each job moves exactly once.
-- An idle queue costs a few reads: a set is only scanned when its head is due.
drain_when_full()
local now = now_ms(ARGV[1])
local moved = 0
if ARGV[3] ~= '' then
  local id = ARGV[3]
  for _, set in ipairs({ K.delayed, K.failed }) do
    if redis.call('ZREM', set, id) == 1 then
      make_ready({ id }, false)
      emit(set == K.failed and 'retrying' or 'waiting', { id })
      moved = 1
    end
  end
  return { moved, next_due(), now, -1, -1, 0, 0, -1 }
end
local limit = tonumber(ARGV[2])
local nd = -1
for _, set in ipairs({ K.delayed, K.failed }) do
  local head = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  local due = head[2] and tonumber(head[2])
  if due and due <= now then
    local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
    call_chunked('ZREM', set, ids)
    make_ready(ids, false)
    emit(set == K.failed and 'retrying' or 'waiting', ids)
    moved = moved + #ids
    head = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
    due = head[2] and tonumber(head[2])
  end
  if due and (nd < 0 or due < nd) then nd = due end
end
local fresh = 0
if ARGV[4] ~= '' then
  fresh = redis.call('ZADD', K.workers, now + tonumber(ARGV[6]), ARGV[4])
  if ARGV[5] ~= '' then redis.call('HSET', K.workerinfo, ARGV[4], ARGV[5]) end
  local gone = redis.call('ZRANGEBYSCORE', K.workers, '-inf', now, 'LIMIT', 0, BATCH)
  if #gone > 0 then
    redis.call('HDEL', K.workerinfo, unpack(gone))
    redis.call('ZREM', K.workers, unpack(gone))
  end
end
local expired = redis.call('ZRANGEBYSCORE', K.uniqexp, '-inf', now, 'LIMIT', 0, limit)
if #expired > 0 then
  call_chunked('HDEL', K.uniq, expired)
  call_chunked('ZREM', K.uniqexp, expired)
end
local sn = redis.call('ZRANGE', K.schednext, 0, 0, 'WITHSCORES')
local next_sched = -1
if sn[2] then next_sched = tonumber(sn[2]) end
local la = redis.call('ZRANGE', K.active, 0, 0, 'WITHSCORES')
local lease_due = -1
if la[2] then lease_due = tonumber(la[2]) end
local ready = redis.call('LLEN', K.wait) + redis.call('ZCARD', K.prio)
if ready > 0 and redis.call('HEXISTS', K.meta, 'paused') == 1 then ready = 0 end
return { moved, nd, now, next_sched, lease_due, ready, fresh, redis.call('HLEN', K.sched) }
