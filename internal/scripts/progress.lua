-- progress.lua: record a running job's progress.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: id; ARGV[2]: lease token; ARGV[3]: progress (JSON).
-- Returns 1 recorded, 0 lease lost (nothing written).
if lease_status(parse_run(redis.call('HGET', K.run, ARGV[1])), ARGV[2]) ~= 1 then return 0 end
redis.call('HSET', K.prog, ARGV[1], ARGV[3])
emit('progress', { ARGV[1] }, { ARGV[3] })
return 1
