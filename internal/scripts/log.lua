-- log.lua: append one entry to a running job's log (Job.Log).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: id; ARGV[2]: lease token; ARGV[3]: the entry (one line of JSON,
--   no newline); ARGV[4]: most entries kept per job (the oldest go first).
-- Returns 1 written, 0 lease lost (nothing written).
-- The log is one hash field of newline-terminated entries: an append is a
-- string copy bounded by the entry cap, with no JSON work in Redis.
if lease_status(parse_run(redis.call('HGET', K.run, ARGV[1])), ARGV[2]) ~= 1 then return 0 end
local log = (redis.call('HGET', K.logs, ARGV[1]) or '') .. ARGV[3] .. '\n'
local over = select(2, string.gsub(log, '\n', '')) - tonumber(ARGV[4])
local from = 1
while over > 0 do
  from = string.find(log, '\n', from, true) + 1
  over = over - 1
end
if from > 1 then log = string.sub(log, from) end
redis.call('HSET', K.logs, ARGV[1], log)
return 1
