-- add.lua: enqueue one or more jobs atomically (Queue.Add, Queue.AddBulk).
-- KEYS: the queue's keys (lib.lua).
-- ARGV[1]: now in ms (0 = Redis TIME); ARGV[2]: n, the number of jobs; then 5
--   values per job: id, body (header "\n" payload), delay ms, run-at ms
--   (absolute, 0 = none), priority (0 = none).
-- Returns one entry per job: {1, state} when added, or {0, state, body} when
--   a job with that id already exists (nothing is written for it).
-- Every id is checked before anything is written, so a re-run of the same
-- call (a client retry after a timeout) never adds a job twice.
local now = now_ms(ARGV[1])
local n = tonumber(ARGV[2])
local out = {}
for i = 0, n - 1 do
  local id = ARGV[3 + i * 5]
  local body = redis.call('HGET', K.jobs, id)
  if body then out[i + 1] = { 0, state_of(id), body } end
end
for i = 0, n - 1 do
  if not out[i + 1] then
    local b = 3 + i * 5
    local id = ARGV[b]
    local delay, runat, pri = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    redis.call('HSET', K.jobs, id, ARGV[b + 1])
    if pri > 0 then redis.call('HSET', K.pri, id, ARGV[b + 4]) end
    local due = 0
    if runat > 0 then due = runat elseif delay > 0 then due = now + delay end
    if due > now then
      schedule(K.delayed, id, due)
      out[i + 1] = { 1, 'delayed' }
    else
      make_ready(id, false)
      out[i + 1] = { 1, 'waiting' }
    end
  end
end
return out
