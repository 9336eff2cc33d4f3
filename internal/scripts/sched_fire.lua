-- sched_fire.lua: handle a due schedule tick exactly once.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: schedule key; ARGV[3]: the tick
--   the caller found due (the schedule's current next tick, ms); ARGV[4]: the
--   definition the caller computed with; ARGV[5]: the tick after now (ms,
--   -1 = none); ARGV[6]: 1 = enqueue a job for the tick, 0 = skip it
--   (missed-tick policy); ARGV[7]: ticks passed over (missed) before it;
--   ARGV[8]: the tick's job id; ARGV[9]: job body; ARGV[10]: priority;
--   ARGV[11]: the tick being run (ms).
-- Returns 1 enqueued, 2 its job already existed (nothing added), 3 skipped,
--   0 already handled (another scheduler moved the schedule on, or it was
--   paused or removed), -1 the definition changed meanwhile (recompute).
-- The compare-and-set on the schedule's next tick is what makes any number
-- of concurrent schedulers enqueue one job per tick; the job id derived from
-- the tick is a second guard.
local now = now_ms(ARGV[1])
local key = ARGV[2]
local cur = redis.call('ZSCORE', K.schednext, key)
if not cur or tonumber(cur) ~= tonumber(ARGV[3]) then return 0 end
if redis.call('HGET', K.sched, key) ~= ARGV[4] then return -1 end
local nxt = tonumber(ARGV[5])
if nxt >= 0 then
  redis.call('ZADD', K.schednext, nxt, key)
else
  redis.call('ZREM', K.schednext, key)
end
local st = { runs = 0, skipped = 0 }
local raw = redis.call('HGET', K.schedrun, key)
if raw then
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then st = v end
end
st.skipped = (tonumber(st.skipped) or 0) + tonumber(ARGV[7])
local code = 3
if ARGV[6] == '1' then
  local id = ARGV[8]
  st.last = tonumber(ARGV[11])
  st.job = id
  st.runs = (tonumber(st.runs) or 0) + 1
  if redis.call('HEXISTS', K.jobs, id) == 1 then
    code = 2
  else
    redis.call('HSET', K.jobs, id, ARGV[9])
    if tonumber(ARGV[10]) > 0 then redis.call('HSET', K.pri, id, ARGV[10]) end
    make_ready({ id }, false)
    emit('added', { id })
    code = 1
  end
else
  st.skipped = st.skipped + 1
end
st.at = now
redis.call('HSET', K.schedrun, key, cjson.encode(st))
return code
