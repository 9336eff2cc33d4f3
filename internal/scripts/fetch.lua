-- fetch.lua: claim up to max ready jobs, each with a fresh lease.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: max jobs; ARGV[3]: lease ms.
-- Returns {paused (0|1), now, next due (-1 = none), then per job 5 values:
--   id, lease token, attempts made, stalls, body}.
-- Jobs without a priority go first (FIFO), then prioritized ones (lowest
-- priority number first). Tokens come from a per-queue counter, so every
-- delivery of a job has a token no other delivery had. If ready jobs remain,
-- the ready marker is set again so another idle worker wakes for them.
local now = now_ms(ARGV[1])
local max = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local out = { 0, now, -1 }
if redis.call('HEXISTS', K.meta, 'paused') == 1 then
  out[1] = 1
  out[3] = next_due()
  return out
end
local ids = {}
if max > 0 then
  local got = redis.call('RPOP', K.wait, max)
  if got then ids = got end
  if #ids < max then
    local p = redis.call('ZPOPMIN', K.prio, max - #ids)
    for i = 1, #p, 2 do ids[#ids + 1] = p[i] end
  end
end
if #ids > 0 then
  local tok = redis.call('HINCRBY', K.meta, 'lease', #ids) - #ids
  local deadline = now + lease_ms
  for _, id in ipairs(ids) do
    tok = tok + 1
    local body = redis.call('HGET', K.jobs, id)
    if body then
      local t = int(tok)
      redis.call('ZADD', K.active, deadline, id)
      redis.call('HSET', K.lease, id, t)
      redis.call('HSET', K.pat, id, int(now))
      local n = #out
      out[n + 1] = id
      out[n + 2] = t
      out[n + 3] = tonumber(redis.call('HGET', K.att, id) or '0')
      out[n + 4] = tonumber(redis.call('HGET', K.stall, id) or '0')
      out[n + 5] = body
    end
  end
  if redis.call('LLEN', K.wait) > 0 or redis.call('ZCARD', K.prio) > 0 then
    redis.call('ZADD', K.marker, 0, '0')
  end
end
if #ids < max then out[3] = next_due() end
return out
