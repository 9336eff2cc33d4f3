-- complete.lua: mark jobs completed (a batch of acknowledgements).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now ms (0 = Redis TIME); ARGV[2]: n; then 5 values per job:
--   id, lease token, result ('' = none), keep count, keep age ms
--   (count 0 and age 0: remove the job at once).
-- Returns one status per job: 1 completed, 2 already acknowledged with this
--   token (a re-run), 0 lease lost (nothing changed for that job).
local now = now_ms(ARGV[1])
local n = tonumber(ARGV[2])
local out = {}
local trims = {} -- distinct retentions of this batch: trimmed once, at the end
local completed = 0
for i = 0, n - 1 do
  local b = 3 + i * 5
  local id, tok = ARGV[b], ARGV[b + 1]
  local s = lease_status(id, tok)
  if s == 1 then
    redis.call('ZREM', K.active, id)
    local count, age = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    local keep_n = keep_count(count, age)
    if keep_n == 0 then
      delete_columns(id)
    else
      redis.call('HINCRBY', K.att, id, 1)
      redis.call('ZADD', K.completed, now, id)
      redis.call('HSET', K.fin, id, int(now))
      if ARGV[b + 2] ~= '' then redis.call('HSET', K.res, id, ARGV[b + 2]) end
      trims[keep_n .. ':' .. age] = { keep_n, age }
      completed = completed + 1
    end
  end
  out[i + 1] = s
end
for _, t in pairs(trims) do trim(K.completed, t[1], t[2], now, BATCH + completed) end
local acked = 0
for _, s in ipairs(out) do if s == 1 then acked = acked + 1 end end
count('c', acked, now)
return out
