-- dead.lua: move an active job to the dead-letter set.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: id; ARGV[3]: lease token;
--   ARGV[4]: error JSON; ARGV[5]: keep count; ARGV[6]: keep age ms;
--   ARGV[7]: 1 = the attempt counts (attempts made +1).
-- Returns 1 done, 2 already done with this token (a re-run), 0 lease lost.
local now = now_ms(ARGV[1])
local id, tok = ARGV[2], ARGV[3]
local s = lease_status(id, tok)
if s ~= 1 then return s end
redis.call('ZREM', K.active, id)
if ARGV[7] == '1' then redis.call('HINCRBY', K.att, id, 1) end
count('f', 1, now)
to_dead(id, now, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
