-- retry.lua: a failed attempt that will be retried, or a snooze.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: id; ARGV[3]: lease token;
--   ARGV[4]: delay ms before the job is ready again; ARGV[5]: error JSON;
--   ARGV[6]: 1 = a failed attempt (attempts made +1, state failed),
--            0 = a snooze (attempt not spent, state delayed).
-- Returns 1 done, 2 already done with this token (a re-run), 0 lease lost.
local now = now_ms(ARGV[1])
local id = ARGV[2]
local r = parse_run(redis.call('HGET', K.run, id))
local s = lease_status(r, ARGV[3])
if s ~= 1 then return s end
redis.call('ZREM', K.active, id)
local set = K.delayed
r[1] = 'i'
if ARGV[6] == '1' then
  r[2] = r[2] + 1
  set = K.failed
  count('f', 1, now)
  emit('failed', { id }, { ARGV[5] })
else
  emit('delayed', { id }, { ARGV[5] })
end
redis.call('HSET', K.run, id, fmt_run(r))
if ARGV[5] ~= '' then redis.call('HSET', K.err, id, ARGV[5]) end
local delay = tonumber(ARGV[4])
if delay > 0 then
  schedule(set, { id }, now + delay)
else
  make_ready({ id }, false)
  emit(set == K.failed and 'retrying' or 'waiting', { id })
end
return 1
