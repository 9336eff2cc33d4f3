-- release.lua: hand active jobs back to waiting without spending an attempt
-- (graceful shutdown of a worker that could not finish them).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: n; then 2 values per job: id, lease token.
-- Returns one status per job: 1 released, 0 lease lost (unchanged).
-- The lease is cleared, so the abandoned handler can no longer acknowledge.
local n = tonumber(ARGV[1])
local ids = {}
for i = 0, n - 1 do ids[i + 1] = ARGV[2 + i * 2] end
local runs = hmget(K.run, ids)
local out, back, set_run = {}, {}, {}
for i, id in ipairs(ids) do
  local r = parse_run(runs[i])
  if lease_status(r, ARGV[3 + (i - 1) * 2]) == 1 then
    r[1], r[4] = 'i', ''
    set_run[#set_run + 1] = id
    set_run[#set_run + 1] = fmt_run(r)
    back[#back + 1] = id
    out[i] = 1
  else
    out[i] = 0
  end
end
if #back > 0 then
  call_chunked('ZREM', K.active, back)
  call_chunked('HSET', K.run, set_run, 2)
  make_ready(back, true)
  emit('released', back)
end
return out
