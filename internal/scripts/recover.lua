-- recover.lua: return jobs whose lease expired (their worker crashed, hung
-- or lost Redis) to waiting; past max stalls, dead-letter them instead.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: max stalls; ARGV[3]: most jobs
--   per call; ARGV[4]: default dead retention count; ARGV[5]: its age ms.
-- Returns {r, d, id...}: r ids requeued then d ids dead-lettered.
-- The lease is cleared, so the old holder's acknowledgement is refused.
-- A stall does not spend an attempt; it is counted in the run state.
local now = now_ms(ARGV[1])
local max_stalls = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', K.active, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
if #ids == 0 then return { 0, 0 } end
call_chunked('ZREM', K.active, ids)
local runs = hmget(K.run, ids)
local bodies = hmget(K.jobs, ids)
local requeued, dead, orphans, set_run = {}, {}, {}, {}
for i, id in ipairs(ids) do
  if not bodies[i] then
    orphans[#orphans + 1] = id
  else
    local r = parse_run(runs[i])
    r[1], r[3], r[4] = 'i', r[3] + 1, ''
    set_run[#set_run + 1] = id
    set_run[#set_run + 1] = fmt_run(r)
    if r[3] > max_stalls then
      local h = header(bodies[i])
      local keep, age = tonumber(ARGV[4]), tonumber(ARGV[5])
      if type(h.keep_dead) == 'table' then
        keep, age = tonumber(h.keep_dead.count) or 0, tonumber(h.keep_dead.age) or 0
      end
      local reason = 'stalled ' .. r[3] .. ' times (max ' .. max_stalls ..
        '): the lease expired each time, the worker crashed or lost Redis while running it'
      dead[#dead + 1] = { id, cjson.encode({ error = 'hopper: job stalled', reason = reason }), keep, age }
    else
      requeued[#requeued + 1] = id
    end
  end
end
delete_jobs(orphans)
local stalled = {}
for _, id in ipairs(requeued) do stalled[#stalled + 1] = id end
for _, d in ipairs(dead) do stalled[#stalled + 1] = d[1] end
emit('stalled', stalled)
if #set_run > 0 then call_chunked('HSET', K.run, set_run, 2) end
make_ready(requeued, true)
for _, d in ipairs(dead) do to_dead({ d[1] }, { d[2] }, now, d[3], d[4]) end
count('f', #dead, now)
local out = { #requeued, #dead }
for _, id in ipairs(requeued) do out[#out + 1] = id end
for _, d in ipairs(dead) do out[#out + 1] = d[1] end
return out
