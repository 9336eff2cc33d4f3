-- extend.lua: heartbeat; extend the leases of a worker's active jobs.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: lease ms; ARGV[3]: n; then 2
--   values per job: id, lease token.
-- Returns one status per job: 1 extended to now + lease ms, 0 lease lost.
drain_when_full()
local now = now_ms(ARGV[1])
local deadline = now + tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local ids = {}
for i = 0, n - 1 do ids[i + 1] = ARGV[4 + i * 2] end
local runs = hmget(K.run, ids)
local out, args = {}, {}
for i, id in ipairs(ids) do
  if lease_status(parse_run(runs[i]), ARGV[5 + (i - 1) * 2]) == 1 then
    args[#args + 1] = deadline
    args[#args + 1] = id
    out[i] = 1
  else
    out[i] = 0
  end
end
if #args > 0 then
  for i = 1, #args, CHUNK do
    redis.call('ZADD', K.active, 'XX', unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end
return out
