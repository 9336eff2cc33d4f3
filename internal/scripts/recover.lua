-- recover.lua: return jobs whose lease expired (their worker crashed, hung
-- or lost Redis) to waiting; past max stalls, dead-letter them instead.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: max stalls; ARGV[3]: most jobs
--   per call; ARGV[4]: default dead retention count; ARGV[5]: its age ms.
-- Returns {requeued, dead-lettered, ids requeued..., ids dead-lettered...}
--   as {r, d, id...}.
-- The lease is cleared, so the old holder's acknowledgement is refused.
-- A stall does not spend an attempt; it is counted in the stall column.
local now = now_ms(ARGV[1])
local max_stalls = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', K.active, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local requeued, dead = {}, {}
local count_failed = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', K.active, id)
  redis.call('HDEL', K.lease, id)
  local stalls = redis.call('HINCRBY', K.stall, id, 1)
  local body = redis.call('HGET', K.jobs, id)
  if not body then
    delete_columns(id)
  elseif stalls > max_stalls then
    local h = header(body)
    local keep, age = tonumber(ARGV[4]), tonumber(ARGV[5])
    if type(h.keep_dead) == 'table' then
      keep, age = tonumber(h.keep_dead.count) or 0, tonumber(h.keep_dead.age) or 0
    end
    local reason = 'stalled ' .. stalls .. ' times (max ' .. max_stalls ..
      '): the lease expired each time, the worker crashed or lost Redis while running it'
    to_dead(id, now, cjson.encode({ error = 'hopper: job stalled', reason = reason }), keep, age)
    count_failed = count_failed + 1
    dead[#dead + 1] = id
  else
    make_ready(id, true)
    requeued[#requeued + 1] = id
  end
end
count('f', count_failed, now)
local out = { #requeued, #dead }
for _, id in ipairs(requeued) do out[#out + 1] = id end
for _, id in ipairs(dead) do out[#out + 1] = id end
return out
