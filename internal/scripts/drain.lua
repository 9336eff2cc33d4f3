-- drain.lua: delete a batch of waiting and delayed jobs (Queue.Drain).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: most jobs to delete; ARGV[2]: 1 = also delayed jobs.
-- Returns {deleted, waiting and (if asked) delayed jobs left}.
-- Active, failed (awaiting retry), completed and dead jobs are untouched.
local limit = tonumber(ARGV[1])
local ids = {}
local got = redis.call('RPOP', K.wait, limit)
if got then ids = got end
if #ids < limit then
  local p = redis.call('ZPOPMIN', K.prio, limit - #ids)
  for i = 1, #p, 2 do ids[#ids + 1] = p[i] end
end
if ARGV[2] == '1' and #ids < limit then
  local d = redis.call('ZRANGE', K.delayed, 0, limit - #ids - 1)
  if #d > 0 then
    call_chunked('ZREM', K.delayed, d)
    for _, id in ipairs(d) do ids[#ids + 1] = id end
  end
end
delete_jobs(ids)
emit('removed', ids)
local left = redis.call('LLEN', K.wait) + redis.call('ZCARD', K.prio)
if ARGV[2] == '1' then left = left + redis.call('ZCARD', K.delayed) end
return { #ids, left }
