-- dead.lua: move an active job to the dead-letter set.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: id; ARGV[3]: lease token;
--   ARGV[4]: error JSON; ARGV[5]: keep count; ARGV[6]: keep age ms;
--   ARGV[7]: 1 = the attempt counts (attempts made +1).
-- Returns 1 done, 2 already done with this token (a re-run), 0 lease lost.
local now = now_ms(ARGV[1])
local id = ARGV[2]
local r = parse_run(redis.call('HGET', K.run, id))
local s = lease_status(r, ARGV[3])
if s ~= 1 then return s end
redis.call('ZREM', K.active, id)
r[1], r[6] = 'i', now
if ARGV[7] == '1' then r[2] = r[2] + 1 end
redis.call('HSET', K.run, id, fmt_run(r))
count('f', 1, now)
to_dead({ id }, { ARGV[4] }, now, tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
