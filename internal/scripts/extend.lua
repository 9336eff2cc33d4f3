-- extend.lua: heartbeat; extend the leases of a worker's active jobs.
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: lease ms; ARGV[3]: n; then 2
--   values per job: id, lease token.
-- Returns one status per job: 1 extended to now + lease ms, 0 lease lost.
local now = now_ms(ARGV[1])
local deadline = now + tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local id, tok = ARGV[4 + i * 2], ARGV[5 + i * 2]
  if lease_status(id, tok) == 1 then
    redis.call('ZADD', K.active, 'XX', deadline, id)
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
return out
