-- release.lua: hand active jobs back to waiting without spending an attempt
-- (graceful shutdown of a worker that could not finish them).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: n; then 2 values per job: id, lease token.
-- Returns one status per job: 1 released, 0 lease lost (unchanged).
-- The lease is cleared, so the abandoned handler can no longer acknowledge.
local n = tonumber(ARGV[1])
local out = {}
for i = 0, n - 1 do
  local id, tok = ARGV[2 + i * 2], ARGV[3 + i * 2]
  local s = lease_status(id, tok)
  if s == 1 then
    redis.call('ZREM', K.active, id)
    redis.call('HDEL', K.lease, id)
    make_ready(id, true)
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
return out
